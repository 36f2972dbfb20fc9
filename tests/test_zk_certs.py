"""Generated ZooKeeper certificates (`zookeeper.tls_certificates: generate`): the dynamic provider's
create/diff/update called directly (no engine), the Secret under the render's mocks, and the generated
certificate on real ZooKeeper 3.8 (a TLS quorum forms; our client connects over TLS)."""
from __future__ import annotations

import datetime

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
