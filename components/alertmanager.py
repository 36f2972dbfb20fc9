"""Alertmanager's configuration as a pure function: routes by severity to the receivers of the settings,
credentials only as files (mounted from a Secret), and inhibition so that one cause pages once.

Checked by Debian's `amtool check-config` (tests/test_alertmanager.py). The image is pinned to the version
of that checker (0.25.0), so the check speaks for what runs: Alertmanager 0.25 reads `api_url_file` (Slack)
and `auth_password_file` (SMTP), but not `url_file` for webhooks, so webhook URLs are plain settings (put
no secret in them).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

IMAGE = "prom/alertmanager:v0.25.0"
SECRETS_DIR = "/etc/alertmanager/secrets"
SLACK_URL_FILE = f"{SECRETS_DIR}/slack-api-url"
SMTP_PASSWORD_FILE = f"{SECRETS_DIR}/smtp-password"

# A cause silences the alerts it explains, in the same platform: (source alert, target alerts regex).
INHIBITIONS: list[tuple[str, str]] = [
    # No quorum: every server looks down or slow, and Mesos and Marathon cannot elect.
    ("ZooKeeperQuorumLost", "ZooKeeperServerDown|ZooKeeperOutstandingRequestsHigh|ZooKeeperLeaderElections"
                            "|MesosNoLeader|MarathonNoLeader"),
    # No Mesos leader: agents cannot register and Marathon's framework is disconnected.
    ("MesosNoLeader", "MesosAgentRegistrationsDropped|MarathonNoLeader"),
]


Severity = Literal["critical", "warning"]


def _all_severities() -> list[Severity]:
    return ["critical", "warning"]


class Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    # Alerts of these severities go here (the rules use critical and warning).
    severities: list[Severity] = Field(default_factory=_all_severities, min_length=1)
    slack_channel: str | None = Field(None, pattern=r"^[#@][\w.-]+$")  # the API URL is the secret file
    email_to: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _one_target(self) -> Receiver:
        if not (self.slack_channel or self.email_to or self.webhook_url):
            raise ValueError(f"receiver {self.name}: set slack_channel, email_to or webhook_url")
        return self


class Smtp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    smarthost: str = Field(pattern=r"^[\w.-]+:\d+$")
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str


def config(receivers: list[Receiver], smtp: Smtp | None = None, group_wait: str = "30s",
           repeat_interval: str = "4h") -> dict[str, Any]:
    """The alertmanager.yml document. Without receivers every alert goes to a receiver that notifies
    nobody (the UI and API still show them): never a silent default to somebody's address."""
    if any(r.email_to for r in receivers) and smtp is None:
        raise ValueError("an email receiver needs the smtp settings")
    names = [r.name for r in receivers]
    if len(set(names)) != len(names):
        raise ValueError(f"receiver names must be unique: {names}")
    out_receivers: list[dict[str, Any]] = [{"name": "nobody"}]
    routes: list[dict[str, Any]] = []
    for r in receivers:
        body: dict[str, Any] = {"name": r.name}
        if r.slack_channel:
            body["slack_configs"] = [{"api_url_file": SLACK_URL_FILE, "channel": r.slack_channel,
                                      "send_resolved": True}]
        if r.email_to and smtp is not None:
            body["email_configs"] = [{"to": r.email_to, "from": smtp.sender, "smarthost": smtp.smarthost,
                                      "auth_username": smtp.username, "auth_password_file": SMTP_PASSWORD_FILE,
                                      "send_resolved": True}]
        if r.webhook_url:
            body["webhook_configs"] = [{"url": r.webhook_url, "send_resolved": True}]
        out_receivers.append(body)
        routes.append({"receiver": r.name, "continue": True,
                       "matchers": [f'severity=~"{"|".join(r.severities)}"']})
    return {
        "route": {"receiver": "nobody", "group_by": ["alertname", "namespace"], "group_wait": group_wait,
                  "group_interval": "5m", "repeat_interval": repeat_interval, "routes": routes},
        "receivers": out_receivers,
        "inhibit_rules": [{"source_matchers": [f'alertname="{source}"'],
                           "target_matchers": [f'alertname=~"{targets}"'],
                           # Only within one platform (Prometheus' external label).
                           "equal": ["platform"]}
                          for source, targets in INHIBITIONS],
    }


def secret_files(receivers: list[Receiver]) -> list[str]:
    """Keys the Alertmanager Secret must hold for these receivers."""
    keys = []
    if any(r.slack_channel for r in receivers):
        keys.append("slack-api-url")
    if any(r.email_to for r in receivers):
        keys.append("smtp-password")
    return keys
