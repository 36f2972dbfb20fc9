"""Each tier component under the recording mocks: the objects it registers and the Outputs it exposes."""
import pytest

from components.k8s import PlatformContext
from components.marathon import Marathon, MarathonArgs
from components.mesos_agent import MesosAgents, MesosAgentsArgs
from components.mesos_master import MesosMasters, MesosMastersArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.zookeeper import ZooKeeperEnsemble, ZooKeeperEnsembleArgs
from tests.support.harness import objects, one, resolve, run, settings

ZK_CONNECT = "zk-0.h.ns.svc.cluster.local:2181,zk-1.h.ns.svc.cluster.local:2181"


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def container(workload, name):
    found = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert len(found) == 1
    return found[0]


def assert_selectors_consistent(result):
    """Workload, Service and PDB selectors are subsets of the pod labels; anti-affinity too."""
    checked = 0
    workloads = [m for m in result.manifests if m["kind"] in ("StatefulSet", "Deployment", "DaemonSet")]
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert w["spec"]["selector"]["matchLabels"].items() <= labels.items()
        checked += 1
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"} <= set(labels)
        aff = pod_spec(w).get("affinity", {}).get("podAntiAffinity", {})
        for term in aff.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
                t["podAffinityTerm"] for t in aff.get("preferredDuringSchedulingIgnoredDuringExecution", [])]:
            assert term["labelSelector"]["matchLabels"].items() <= labels.items()
            checked += 1
        for svc in objects(result, "Service") + objects(result, "PodDisruptionBudget"):
            sel = svc["spec"].get("selector") or svc["spec"]["selector"]["matchLabels"]
            sel = sel.get("matchLabels", sel)
            assert sel.items() <= labels.items(), svc["metadata"]["name"]
            checked += 1
    assert checked > 0


def assert_restricted(c, pod):
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsUser"] != 0


# --- ZooKeeper ------------------------------------------------------------------------------------
@pytest.mark.parametrize("production", [False, True])
def test_zookeeper_ensemble(production):
    s = settings(production=production, namespace="ns")
    result, out = resolve(lambda: {"connect": ZooKeeperEnsemble("zk", ZooKeeperEnsembleArgs(PlatformContext.of(s), s.zookeeper)).connect_string})
    sts = one(result, "StatefulSet", "zk")
    headless = one(result, "Service", "zk-headless")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "zk-headless"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["spec"]["ports"]} == {2181, 2888, 3888, 7000}
    assert one(result, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    aff = pod_spec(sts)["affinity"]["podAntiAffinity"]
    assert ("requiredDuringSchedulingIgnoredDuringExecution" in aff) is production
    assert ("preferredDuringSchedulingIgnoredDuringExecution" in aff) is not production
    assert_selectors_consistent(result)

    c = container(sts, "zookeeper")
    assert_restricted(c, pod_spec(sts))
    assert "ruok" in " ".join(c["livenessProbe"]["exec"]["command"])
    assert "srvr" in " ".join(c["readinessProbe"]["exec"]["command"])
    assert "HOSTNAME##*-" in c["command"][-1] and "+ 1" in c["command"][-1]  # myid = ordinal + 1
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]

    cfg = one(result, "ConfigMap")["data"]["zoo.cfg"]
    hosts = [f"zk-{i}.zk-headless.ns.svc.cluster.local" for i in range(3)]
    for i, host in enumerate(hosts):
        assert f"server.{i + 1}={host}:2888:3888:participant;2181" in cfg
    assert "4lw.commands.whitelist=ruok,srvr,mntr" in cfg
    assert "metricsProvider.httpPort=7000" in cfg and "autopurge.purgeInterval=1" in cfg
    assert out["connect"] == ",".join(f"{h}:2181" for h in hosts)


# --- Mesos masters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("replicas,quorum", [(1, 1), (3, 2), (5, 3)])
def test_mesos_masters(replicas, quorum):
    s = settings(namespace="ns", mesos_master={"replicas": replicas})
    result, out = resolve(lambda: {"zk_url": MesosMasters("mm", MesosMastersArgs(PlatformContext.of(s), s.mesos_master, ZK_CONNECT)).zk_url})
    sts = one(result, "StatefulSet", "mm")
    c = container(sts, "mesos-master")
    assert sts["spec"]["replicas"] == replicas
    assert f"--quorum={quorum}" in c["args"]
    assert f"--zk=zk://{ZK_CONNECT}/mesos" in c["args"] and out["zk_url"] == f"zk://{ZK_CONNECT}/mesos"
    assert "--registry=replicated_log" in c["args"]
    assert "--hostname=$(POD_NAME).mm-headless.ns.svc.cluster.local" in c["args"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"]
    # The registry lives in work_dir, which is the per-pod claim (not emptyDir).
    work_dir = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--work_dir="))
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == work_dir)
    assert mount["name"] in {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/master/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/master/health"
    assert one(result, "Service", "mm-headless")["spec"]["clusterIP"] == "None"
    assert one(result, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert_restricted(c, pod_spec(sts))
    assert_selectors_consistent(result)


# --- Mesos agents -----------------------------------------------------------------------------------
@pytest.mark.parametrize("containerizers", [["docker", "mesos"], ["mesos"]])
def test_mesos_agents(containerizers):
    s = settings(namespace="ns", mesos_agent={"containerizers": containerizers, "work_dir": "/srv/mesos"})
    result = run(lambda: MesosAgents("agent", MesosAgentsArgs(PlatformContext.of(s), s.mesos_agent, "zk://zk:2181/mesos")))
    ds = one(result, "DaemonSet")
    pod, c = pod_spec(ds), container(ds, "mesos-agent")
    assert ds["metadata"]["namespace"] == "ns-agents"
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet" and pod["hostPID"] is True
    assert "--master=zk://zk:2181/mesos" in c["args"]
    assert f"--containerizers={','.join(containerizers)}" in c["args"]
    assert {"--launcher=posix", "--systemd_enable_support=false", "--work_dir=/srv/mesos"} <= set(c["args"])
    assert c["securityContext"] == {"privileged": True}
    assert c["livenessProbe"]["httpGet"]["path"] == "/slave(1)/health"
    docker = "docker" in containerizers
    assert any(v["name"] == "docker-socket" for v in pod["volumes"]) is docker
    assert any(a.startswith("--docker_mesos_image=") for a in c["args"]) is docker
    work = next(v for v in pod["volumes"] if v["name"] == "work")
    assert work["hostPath"]["path"] == "/srv/mesos"
    assert_selectors_consistent(result)


# --- Marathon ---------------------------------------------------------------------------------------
def test_marathon():
    s = settings(namespace="ns")
    result, out = resolve(lambda: {"url": Marathon("mt", MarathonArgs(PlatformContext.of(s), s.marathon, ZK_CONNECT, "zk://m/mesos")).url})
    dep = one(result, "Deployment")
    c = container(dep, "marathon")
    args = c["args"]
    assert dep["spec"]["replicas"] == 3
    assert args[args.index("--master") + 1] == "zk://m/mesos"
    assert args[args.index("--zk") + 1] == f"zk://{ZK_CONNECT}/marathon"
    assert args[args.index("--hostname") + 1] == "$(POD_IP)"
    assert {"name": "LIBPROCESS_IP", "value": "$(POD_IP)"} in c["env"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert one(result, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert out["url"] == "http://mt.ns.svc.cluster.local:8080"
    assert_restricted(c, pod_spec(dep))
    assert_selectors_consistent(result)


# --- Monitoring -------------------------------------------------------------------------------------
def test_monitoring_rbac_is_namespaced_and_read_only():
    s = settings(namespace="ns", monitoring={"retention": "7d"})
    result = run(lambda: Monitoring("prom", MonitoringArgs(PlatformContext.of(s), s.monitoring, s.zookeeper.replicas)))
    assert not objects(result, "ClusterRole") and not objects(result, "ClusterRoleBinding")
    roles = objects(result, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"ns", "ns-agents"}
    for role in roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "services", "endpoints"],
                                  "verbs": ["get", "list", "watch"]}]
    bindings = objects(result, "RoleBinding")
    assert len(bindings) == 2
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "prom", "namespace": "ns"}]
    dep = one(result, "Deployment")
    assert pod_spec(dep)["serviceAccountName"] == "prom"
    c = container(dep, "prometheus")
    assert "--storage.tsdb.retention.time=7d" in c["args"]
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert_restricted(c, pod_spec(dep))
    assert_selectors_consistent(result)
