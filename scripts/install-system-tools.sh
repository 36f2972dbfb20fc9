#!/usr/bin/env bash
# System tools the checks and tests run for real: promtool (Debian prometheus), amtool (Debian
# prometheus-alertmanager), ZooKeeper 3.8 + a JRE,
# docker-compose v1 (validates compose files without an engine), Node.js and Chromium (the web UI).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
# amtool checks the Alertmanager configuration the monitoring tier renders.
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null || need+=(default-jre-headless)
command -v docker-compose >/dev/null || need+=(docker-compose)
# Node.js + npm run the Argo CRD validators (npm packages in package.json; `make setup` runs npm ci).
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# Debian's Chromium: the web UI's end-to-end tests and benchmark drive it through playwright-core
# (Playwright's own browser download cannot work on these machines).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d on these machines keeps the prometheus/zookeeper daemons from starting; we only need the binaries.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
