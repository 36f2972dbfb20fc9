"""Generated ZooKeeper certificates (`zookeeper.tls_certificates: generate`): the dynamic provider's
create/diff/update called directly (no engine), the Secret under the render's mocks, and the generated
certificate on real ZooKeeper 3.8 (a TLS quorum forms; our client connects over TLS)."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import zk_certs

NAMES = ["*.zookeeper-headless.p.svc.cluster.local", "zookeeper-client.p.svc.cluster.local"]
PROPS = {"dns_names": NAMES, "ip_addresses": [], "cert_days": 365}
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def provider(at: datetime.datetime = T0) -> zk_certs.CertificatesProvider:
    return zk_certs.CertificatesProvider(clock=lambda: at)


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_create_issues_a_ca_and_a_member_certificate_it_signed():
    outs = provider().create(dict(PROPS)).outs
    ca, member = cert(outs["ca_crt"]), cert(outs["tls_crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    member.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    sans = member.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == NAMES
    usages = set(member.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}  # the quorum is mutual TLS
    assert member.not_valid_after_utc == T0 + datetime.timedelta(days=365)
    assert outs["tls_key"].startswith("-----BEGIN PRIVATE KEY-----") and outs["ca_key"] != outs["tls_key"]
    # Two creates are two CAs: nothing is derived from the inputs alone.
    assert provider().create(dict(PROPS)).outs["ca_crt"] != outs["ca_crt"]


def test_diff_reports_no_change_for_the_same_inputs_and_a_change_for_names_or_validity():
    p = provider()
    outs = p.create(dict(PROPS)).outs
    assert p.diff("id", outs, dict(PROPS)).changes is False
    assert p.diff("id", outs, {**PROPS, "cert_days": 365.0}).changes is False  # the engine sends numbers as floats
    assert p.diff("id", outs, {**PROPS, "dns_names": [*NAMES, "extra.example"]}).changes is True
    assert p.diff("id", outs, {**PROPS, "ip_addresses": ["10.0.0.1"]}).changes is True
    assert p.diff("id", outs, {**PROPS, "cert_days": 90}).changes is True
    assert p.diff("id", outs, {**PROPS, "dns_names": [*NAMES, "x"]}).replaces == []  # never a new CA


def test_diff_renews_a_certificate_close_to_expiry():
    outs = provider().create(dict(PROPS)).outs
    assert provider(T0 + datetime.timedelta(days=300)).diff("id", outs, dict(PROPS)).changes is False
    late = T0 + datetime.timedelta(days=365 - zk_certs.RENEW_BEFORE_DAYS + 1)
    assert provider(late).diff("id", outs, dict(PROPS)).changes is True


def test_update_reissues_the_member_certificate_under_the_same_ca():
    p = provider()
    before = p.create(dict(PROPS)).outs
    news = {**PROPS, "dns_names": [*NAMES, "zookeeper.example"]}
    after = provider(T0 + datetime.timedelta(days=10)).update("id", before, news).outs
    assert (after["ca_crt"], after["ca_key"]) == (before["ca_crt"], before["ca_key"]), "clients keep trusting"
    assert after["tls_crt"] != before["tls_crt"] and after["tls_key"] != before["tls_key"]
    member = cert(after["tls_crt"])
    member.verify_directly_issued_by(cert(before["ca_crt"]))
    assert "zookeeper.example" in member.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert after["dns_names"] == news["dns_names"]


def test_check_refuses_bad_inputs_by_property():
    failures = provider().check({}, {"dns_names": ["a"], "ip_addresses": ["not-an-ip"], "cert_days": 0}).failures
    assert {f.property for f in failures} == {"ip_addresses", "cert_days"}
    failures = provider().check({}, {"dns_names": [], "ip_addresses": [], "cert_days": 30}).failures
    assert [f.property for f in failures] == ["dns_names"]
    assert provider().check({}, dict(PROPS)).failures == []


def test_a_generated_certificate_forms_a_tls_quorum_and_serves_our_client(tmp_path):
    """The provider's real output as the Secret's files: three members of Debian's ZooKeeper 3.8 form a
    quorum over mutual TLS with it (they are Ready only once they follow a leader), and our one client
    helper connects to the secure port, verifying the certificate and host name against the generated CA."""
    from components.settings import ZooKeeperSettings
    from orchestrator.services.zk.session import close_client, open_client
    from orchestrator.services.zk.tls import ZkTls
    from tests.support.statefulset_roll import LoopbackStatefulSet, write_secret_files

    outs = zk_certs.CertificatesProvider().create({"dns_names": ["localhost"], "ip_addresses": ["127.0.0.1"],
                                                   "cert_days": 30}).outs
    secret = write_secret_files(tmp_path / "secret", outs["ca_crt"], outs["tls_crt"], outs["tls_key"])
    sts = LoopbackStatefulSet(tmp_path / "sts", max_replicas=3, tls_dir=secret)
    try:
        sts.apply(ZooKeeperSettings(tick_time_ms=500, tls_secret="zookeeper-tls"), 3)
        assert sorted(sts.mode(i) or "" for i in range(3)) == ["follower", "follower", "leader"]
        secure = ",".join(f"127.0.0.1:{sts.secure_ports[i]}" for i in range(3))
        side = open_client(secure, tls=ZkTls.from_dir(str(secret)), label="generated")
        try:
            side.client.create("/generated", b"ok")
            assert side.client.get("/generated")[0] == b"ok"
        finally:
            close_client(side)
    finally:
        sts.stop()


def render_generated(**zookeeper):
    from components.platform import Platform, PlatformArgs
    from tests.support.harness import run, settings

    s = settings(namespace="p", zookeeper={"tls_secret": "zookeeper-tls", "tls_certificates": "generate",
                                           **zookeeper},
                 marathon_scaler={"enabled": True})
    return run(lambda: Platform("orchestrator", PlatformArgs(s)))


def test_the_generated_secret_is_rendered_in_the_credentials_tier_with_redacted_keys():
    """Under the render's mocks (nothing issued offline): one certificates resource with the member names
    and secret key outputs, one kubernetes.io/tls Secret in the credentials tier whose values are redacted,
    and the pods that mount it no longer declare it external; the reference check passes."""
    from orchestrator.toolchain import checks
    from orchestrator.toolchain.render import REDACTED

    result = render_generated(tls_cert_days=90)
    certs = [r for r in result.registrations if r.type.endswith(":ZooKeeperCertificates")]
    assert len(certs) == 1
    assert certs[0].inputs["dns_names"] == NAMES and certs[0].inputs["cert_days"] == 90
    secret = next(d for d in result.manifests if d["kind"] == "Secret" and d["metadata"]["name"] == "zookeeper-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["stringData"] == {"tls.crt": REDACTED, "tls.key": REDACTED, "ca.crt": REDACTED}
    assert any(d is secret for d in result.manifests_by_tier["auth"]), "Secrets live in the credentials tier only"
    sts = next(d for d in result.manifests if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "zookeeper")
    assert "orchestrator.io/external-secrets" not in sts["spec"]["template"]["metadata"]["annotations"]
    assert checks.reference_problems(result.manifests) == []


def test_generate_needs_the_secret_name():
    from components.settings import SettingsError, settings_from_config

    with pytest.raises(SettingsError, match="tls_certificates.*needs tls_secret"):
        settings_from_config({"orchestrator:zookeeper": '{"tls_certificates": "generate"}'}, "Pulumi.x.yaml")


def test_with_gitops_delivery_pulumi_still_applies_the_generated_secret():
    """prod is GitOps-delivered: `pulumi up` applies the namespaces and the credentials, Argo CD the tiers
    from git. The generated Secret must be among what Pulumi applies (it could never come from git)."""
    import json

    from components.settings import SECRET_KEYS
    from orchestrator.toolchain.render import build_manifests, load_stack_config, run_program

    config, secret_keys, _ = load_stack_config("prod")
    for key in SECRET_KEYS:
        config[f"orchestrator:{key}"] = f"value-of-{key}"
    zookeeper = json.loads(config["orchestrator:zookeeper"])
    config["orchestrator:zookeeper"] = json.dumps({**zookeeper, "tls_secret": "zookeeper-tls",
                                                   "tls_certificates": "generate"})
    result = build_manifests(run_program("prod", config, list(secret_keys)))  # scope "deploy"
    assert not [d for d in result.manifests if d["kind"] == "StatefulSet"], "the tiers are Argo CD's here"
    secret = [d for d in result.manifests_by_tier["auth"] if d["metadata"]["name"] == "zookeeper-tls"]
    assert len(secret) == 1 and secret[0]["type"] == "kubernetes.io/tls"
    assert [r.name for r in result.registrations if r.type.endswith(":ZooKeeperCertificates")] == [
        "zookeeper-tls-certificates"]


def test_the_private_keys_are_secret_outputs(monkeypatch):
    """The engine encrypts outputs named in additional_secret_outputs in the state and shows them as
    [secret]; the inputs carry no key material (they are names and a number of days)."""
    import pulumi.dynamic

    seen: dict = {}

    def record(self, provider, name, props, opts=None):
        seen.update(provider=provider, props=props, opts=opts)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", record)
    zk_certs.ZooKeeperCertificates("x", NAMES, [], 30)
    assert set(seen["opts"].additional_secret_outputs) >= {"ca_key", "tls_key"}
    assert isinstance(seen["provider"], zk_certs.CertificatesProvider)
    assert {k: v for k, v in seen["props"].items() if v is not None} == {
        "dns_names": NAMES, "ip_addresses": [], "cert_days": 30}


def test_the_provider_survives_the_engines_serialization(tmp_path):
    """`pulumi up` pickles the provider into the state (dill) and runs it in the dynamic-provider host, a
    fresh Python process: serialize as the SDK does, load and create there."""
    import base64
    import json
    import os
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    blob = tmp_path / "provider.b64"
    blob.write_text(serialize_provider(zk_certs.CertificatesProvider()))
    code = ("import base64, dill, json, sys; p = dill.loads(base64.b64decode(open(sys.argv[1]).read())); "
            "print(json.dumps(sorted(p.create({'dns_names': ['a.example'], 'ip_addresses': [], "
            "'cert_days': 30}).outs)))")
    got = subprocess.run([sys.executable, "-c", code, str(blob)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**os.environ})
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == sorted([*zk_certs.INPUTS, "ca_crt", "ca_key", "tls_crt", "tls_key",
                                             "not_after"])
    # By reference (components.zk_certs.CertificatesProvider), not a copy of the code: the state holds a
    # few bytes, and the host runs the installed project's code, as `pulumi up` itself does.
    assert len(base64.b64decode(blob.read_text())) < 1000
