"""AWS End User Messaging SMS events through an SNS HTTPS subscription: the URL token, the SNS
signature (a self-signed certificate served by a real loopback server that stands in for
sns.<region>.amazonaws.com), topic allowlist, replay window, subscription confirmation, and the
parsing of documented event shapes kept under tests/fixtures/aws_sns/."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.http import HttpResponse
from django.test import Client

from dlrconsole import settings as project_settings
from dlrconsole.celery import app as celery_app
from receipts.models import Connection, Message, Receipt
from receipts.providers import aws_sns, sns_signature
from receipts.providers.base import ControlMessage, PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.providers.registry import get_adapter
from receipts.providers.sns_signature import CertificateUnavailable
from receipts.statuses import Status
from receipts.tasks import SubscribeUrlUnavailable, confirm_sns_subscription
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, dumps, json_value
from tests.providers.security_suite import TimestampedProviderSecuritySuite
from tests.providers.signing import fixture

TOKEN = "sns-url-token-0123456789abcdef"
OTHER_TOKEN = "sns-url-token-fedcba9876543210"
TOPIC = "arn:aws:sns:us-east-1:111122223333:sms-events"
CERT_PATH = "/SimpleNotificationService-loopback.pem"
OTHER_CERT_PATH = "/SimpleNotificationService-other.pem"
LOOPBACK_PATTERN = r"127\.0\.0\.1:\d+"


def self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=36500))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_PEM = self_signed(KEY)
OTHER_CERT_PEM = self_signed(OTHER_KEY)


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 answering GETs from a path → (status, body) table and
    recording every request it saw (path and query)."""

    def __init__(self, routes: dict[str, tuple[int, bytes]]) -> None:
        self.routes = routes
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(self.path)
                status, body = server.routes.get(self.path.partition("?")[0], (404, b"not found"))
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", server.url(CERT_PATH))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cert_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer({CERT_PATH: (200, CERT_PEM), OTHER_CERT_PATH: (200, OTHER_CERT_PEM)})
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def loopback_sns_hosts(settings: Any) -> Iterator[None]:
    """Tests only: the loopback servers play the SNS hosts. The certificate cache is emptied so
    that each test sees its own fetches."""
    settings.DLR_SNS_CERT_HOST_PATTERN = LOOPBACK_PATTERN
    settings.DLR_SNS_CERT_URL_SCHEMES = ["http"]
    sns_signature.clear_cache()
    yield
    sns_signature.clear_cache()


def dump(envelope: dict[str, Any]) -> bytes:
    """As SNS lays out its JSON."""
    return json.dumps(envelope, indent=2, separators=(",", " : ")).encode()


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope_time(body: bytes) -> float:
    return datetime.fromisoformat(json.loads(body)["Timestamp"]).timestamp()


def signed(
    body: bytes,
    cert_url: str,
    *,
    key: rsa.RSAPrivateKey = KEY,
    version: str = "1",
    timestamp: float | None = None,
    **fields: Any,
) -> bytes:
    """`body` (an SNS envelope) with `fields` changed, signed as SNS signs."""
    envelope = json.loads(body)
    envelope.update(fields)
    if timestamp is not None:
        envelope["Timestamp"] = iso(timestamp)
    envelope["SignatureVersion"] = version
    envelope["SigningCertURL"] = cert_url
    envelope["Signature"] = sns_signature.sign(key, envelope)
    return dump(envelope)


def edit_event(body: bytes, **changes: Any) -> bytes:
    """The envelope with its SMS event changed and its signature kept, as a forger would."""
    envelope = json.loads(body)
    event = json.loads(envelope["Message"])
    event.update(changes)
    envelope["Message"] = json.dumps(event, separators=(",", ":"))
    return dump(envelope)


def sns_request(body: bytes, *, token: str = TOKEN) -> WebhookRequest:
    envelope = json.loads(body)
    return WebhookRequest(
        method="POST",
        url=f"https://dlr.example/hooks/aws/{token}/",
        headers={
            "content-type": "text/plain; charset=UTF-8",
            "user-agent": "Amazon Simple Notification Service Agent",
            "x-amz-sns-message-type": str(envelope.get("Type", "")),
            "x-amz-sns-message-id": str(envelope.get("MessageId", "")),
            "x-amz-sns-topic-arn": str(envelope.get("TopicArn", "")),
        },
        body=body,
        path_token=token,
    )


def adapter_at(body: bytes) -> aws_sns.AwsSnsAdapter:
    """An adapter whose clock reads the envelope's own Timestamp (fixtures are dated)."""
    return aws_sns.AwsSnsAdapter(clock=lambda: envelope_time(body))


def verify(body: bytes, *, token: str = TOKEN, options: dict[str, Any] | None = None) -> None:
    adapter_at(body).verify(sns_request(body, token=token), [TOKEN], options=options)


DELIVERED = fixture("aws_sns", "notification_delivered.json")
NOW = int(envelope_time(DELIVERED))


class TestAwsSnsSecurity(TimestampedProviderSecuritySuite):
    """The connection's secret is the URL token; the SNS signature is checked on top of it.
    `valid_body`/`tampered_body` are signed with the loopback certificate's key; the tampered
    body keeps the signature of the valid one, with another event type in its Message."""

    adapter = aws_sns.AwsSnsAdapter(clock=lambda: float(NOW))  # as time.time() reads
    secret = TOKEN
    other_secret = OTHER_TOKEN
    # Not a header: the envelope's Signature field (see `with_signature`), never kept.
    signature_header = "signature"
    bad_signature = base64.b64encode(bytes(256)).decode()  # an RSA-2048 signature's length
    now = NOW
    tolerance_seconds = aws_sns.TOLERANCE_SECONDS
    far_timestamps = (0, 253402300799)  # the envelope's ISO Timestamp ends at year 9999

    @pytest.fixture(autouse=True)
    def _certificate_url(self, cert_server: LoopbackServer) -> None:
        self.cert_url = cert_server.url(CERT_PATH)

    @property
    def valid_body(self) -> bytes:
        return signed(DELIVERED, self.cert_url)

    @property
    def tampered_body(self) -> bytes:
        return edit_event(self.valid_body, eventType="TEXT_UNREACHABLE")

    def make_signed_request(self, secret: str, body: bytes, timestamp: int | None = None) -> WebhookRequest:
        return sns_request(signed(body, self.cert_url, timestamp=timestamp), token=secret)

    def with_signature(self, request: WebhookRequest, value: str | None) -> WebhookRequest:
        envelope = json.loads(request.body)
        envelope.pop("Signature")
        if value is not None:
            envelope["Signature"] = value
        return replace(request, body=dump(envelope))


# The string to sign, as AWS documents it (sns-verify-signature-of-message.html, step 5)


def test_notification_string_to_sign_is_the_documented_one() -> None:
    envelope = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2019-01-31T04:37:04.321Z",
        "SignatureVersion": "1",
    }
    assert sns_signature.string_to_sign(envelope) == (
        b"Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\nSubject\nMy subject\n"
        b"Timestamp\n2019-01-31T04:37:04.321Z\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nNotification\n"
    )


def test_notification_without_subject_leaves_it_out_of_the_string_to_sign() -> None:
    envelope = {"Type": "Notification", "MessageId": "m", "Message": "x", "Timestamp": "t", "TopicArn": "a"}
    assert sns_signature.string_to_sign(envelope) == (
        b"Message\nx\nMessageId\nm\nTimestamp\nt\nTopicArn\na\nType\nNotification\n"
    )


def test_subscription_confirmation_string_to_sign_is_the_documented_one() -> None:
    url = "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-2:1:T&Token=233"
    envelope = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "3d891288-136d-417f-bc05-901c108273ee",
        "Token": "233",
        "TopicArn": "arn:aws:sns:us-east-2:1:T",
        "Message": "My Test Message",
        "SubscribeURL": url,
        "Timestamp": "2019-01-31T19:25:13.719Z",
    }
    assert sns_signature.string_to_sign(envelope) == (
        b"Message\nMy Test Message\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\n"
        + f"SubscribeURL\n{url}\n".encode()
        + b"Timestamp\n2019-01-31T19:25:13.719Z\nToken\n233\nTopicArn\narn:aws:sns:us-east-2:1:T\n"
        b"Type\nSubscriptionConfirmation\n"
    )


@pytest.mark.parametrize(("version", "algorithm"), [("1", hashes.SHA1), ("2", hashes.SHA256)])
def test_signature_is_rsa_pkcs1v15_over_the_string_to_sign(version: str, algorithm: type[hashes.HashAlgorithm]) -> None:
    envelope = json.loads(DELIVERED) | {"SignatureVersion": version}
    signature = base64.b64decode(sns_signature.sign(KEY, envelope))
    # Checked with the public key alone, independently of the adapter's verify.
    KEY.public_key().verify(signature, sns_signature.string_to_sign(envelope), padding.PKCS1v15(), algorithm())


# Signature versions, keys and certificate URLs


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify(cert_server: LoopbackServer, version: str) -> None:
    verify(signed(DELIVERED, cert_server.url(CERT_PATH), version=version))


def test_unknown_signature_version_is_refused(cert_server: LoopbackServer) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH))
    with pytest.raises(SignatureError, match="SignatureVersion"):
        verify(dump(json.loads(body) | {"SignatureVersion": "3"}))


def test_version_1_signature_relabelled_as_version_2_is_refused(cert_server: LoopbackServer) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH), version="1")
    with pytest.raises(SignatureError):
        verify(dump(json.loads(body) | {"SignatureVersion": "2"}))


def test_signature_by_another_key_is_refused_even_with_the_right_token(cert_server: LoopbackServer) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(signed(DELIVERED, cert_server.url(CERT_PATH), key=OTHER_KEY))


def test_signature_is_checked_with_the_certificate_at_the_signing_cert_url(cert_server: LoopbackServer) -> None:
    verify(signed(DELIVERED, cert_server.url(OTHER_CERT_PATH), key=OTHER_KEY))
    with pytest.raises(SignatureError):
        verify(signed(DELIVERED, cert_server.url(OTHER_CERT_PATH), key=KEY))


@pytest.mark.parametrize(
    "cert_url",
    [
        "http://localhost:{port}/SimpleNotificationService-loopback.pem",
        "http://127.0.0.1.nip.io:{port}/SimpleNotificationService-loopback.pem",
        "http://user@127.0.0.1:{port}/SimpleNotificationService-loopback.pem",
        "ftp://127.0.0.1:{port}/SimpleNotificationService-loopback.pem",
        "http://127.0.0.1:{port}/SimpleNotificationService-loopback.pem\n",
        "/SimpleNotificationService-loopback.pem",
    ],
    ids=["other-host-name", "look-alike-suffix", "user-info", "other-scheme", "control-character", "relative"],
)
def test_cert_url_off_the_sns_hosts_is_refused_without_any_fetch(cert_server: LoopbackServer, cert_url: str) -> None:
    port = cert_server.httpd.server_address[1]
    with pytest.raises(SignatureError, match="SigningCertURL"):
        verify(signed(DELIVERED, cert_url.format(port=port)))
    assert cert_server.seen == []


# Only sns.<region>.amazonaws.com (and .amazonaws.com.cn in China) may serve certificates and
# confirmations. Other names under amazonaws.com can be anyone's: an S3 bucket called `sns` is
# sns.s3.amazonaws.com, and API Gateway, ELB and EC2 give customers names there too.
SNS_HOSTS = [
    ("sns.us-east-1.amazonaws.com", True),
    ("sns.eu-west-3.amazonaws.com", True),
    ("sns.ap-southeast-2.amazonaws.com", True),
    ("sns.us-gov-west-1.amazonaws.com", True),
    ("sns.cn-north-1.amazonaws.com.cn", True),
    ("sns.cn-northwest-1.amazonaws.com.cn", True),
    ("SNS.US-EAST-1.AMAZONAWS.COM", True),  # the same host: DNS names are case-insensitive
    ("sns.s3.amazonaws.com", False),  # the S3 bucket `sns`, virtual-hosted
    ("sns.s3-us-west-2.amazonaws.com", False),  # the bucket on a legacy regional S3 endpoint
    ("sns.s3.us-east-1.amazonaws.com", False),
    ("sns.execute-api.us-east-1.amazonaws.com", False),
    ("sns.us-east-1.elb.amazonaws.com", False),
    ("SNS.S3.AMAZONAWS.COM", False),
    ("sns.us-east-1.amazonaws.com.evil.test", False),
    ("sns.us-east-1.amazonaws.com.", False),
    ("xsns.us-east-1.amazonaws.com", False),
    ("sns-us-east-1.amazonaws.com", False),
    ("sns.us-east-1xamazonaws.com", False),
    ("sns.us-east-1.amazonaws.com.cn.evil.test", False),
    ("sns.amazonaws.com", False),
    ("sns..amazonaws.com", False),
    ("s3.us-east-1.amazonaws.com", False),
    ("sns.us-east-1.amazonaws.com:443", False),
    ("sns.us-east-1.amazonaws.com:8443", False),
    ("attacker@sns.us-east-1.amazonaws.com", False),
    ("sns.us-east-1.amazonaws.com@evil.test", False),
    ("sns.us-east-1.amazonaws.com\\@evil.test", False),
]


@pytest.mark.parametrize(("host", "allowed"), SNS_HOSTS, ids=[host for host, _ in SNS_HOSTS])
def test_production_settings_allow_only_https_sns_region_hosts(settings: Any, host: str, allowed: bool) -> None:
    settings.DLR_SNS_CERT_HOST_PATTERN = project_settings.DLR_SNS_CERT_HOST_PATTERN
    settings.DLR_SNS_CERT_URL_SCHEMES = project_settings.DLR_SNS_CERT_URL_SCHEMES
    assert sns_signature.is_sns_url(f"https://{host}/SimpleNotificationService-9c6465fa.pem") is allowed
    assert sns_signature.is_sns_url(f"http://{host}/SimpleNotificationService-9c6465fa.pem") is False


@pytest.mark.parametrize("host", [host for host, allowed in SNS_HOSTS if not allowed])
def test_production_settings_do_not_confirm_a_subscription_off_the_sns_region_hosts(settings: Any, host: str) -> None:
    # Refused before any request: nothing listens on these names in a test run anyway.
    settings.DLR_SNS_CERT_HOST_PATTERN = project_settings.DLR_SNS_CERT_HOST_PATTERN
    settings.DLR_SNS_CERT_URL_SCHEMES = project_settings.DLR_SNS_CERT_URL_SCHEMES
    assert confirm_sns_subscription(f"https://{host}/?Action=ConfirmSubscription&TopicArn={TOPIC}") is False


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://evil.example/?u=https://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com\t/cert.pem",
        "//sns.us-east-1.amazonaws.com/cert.pem",
    ],
)
def test_production_settings_refuse_urls_that_only_mention_an_sns_host(settings: Any, url: str) -> None:
    settings.DLR_SNS_CERT_HOST_PATTERN = project_settings.DLR_SNS_CERT_HOST_PATTERN
    settings.DLR_SNS_CERT_URL_SCHEMES = project_settings.DLR_SNS_CERT_URL_SCHEMES
    assert sns_signature.is_sns_url(url) is False


def test_certificate_is_fetched_once_for_many_notifications(cert_server: LoopbackServer) -> None:
    for i in range(20):
        verify(signed(DELIVERED, cert_server.url(CERT_PATH), MessageId=f"c4a7e9b2-0d13-4f6a-8b5c-{i:012d}"))
    assert cert_server.seen == [CERT_PATH]


def test_certificate_server_error_is_refused(cert_server: LoopbackServer) -> None:
    cert_server.routes[CERT_PATH] = (500, b"")
    with pytest.raises(sns_signature.CertificateUnavailable):
        verify(signed(DELIVERED, cert_server.url(CERT_PATH)))


def test_a_failed_fetch_is_not_cached(cert_server: LoopbackServer) -> None:
    cert_server.routes[CERT_PATH] = (503, b"")
    with pytest.raises(CertificateUnavailable):
        verify(signed(DELIVERED, cert_server.url(CERT_PATH)))
    cert_server.routes[CERT_PATH] = (200, CERT_PEM)
    verify(signed(DELIVERED, cert_server.url(CERT_PATH)))
    assert cert_server.seen == [CERT_PATH, CERT_PATH]


def test_certificate_redirect_is_not_followed(cert_server: LoopbackServer) -> None:
    cert_server.routes["/moved.pem"] = (302, b"")
    with pytest.raises(CertificateUnavailable):
        verify(signed(DELIVERED, cert_server.url("/moved.pem")))
    assert cert_server.seen == ["/moved.pem"]


@pytest.mark.parametrize("content", [b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END"])
def test_signing_cert_url_that_is_not_a_certificate_is_refused(cert_server: LoopbackServer, content: bytes) -> None:
    cert_server.routes["/junk.pem"] = (200, content)
    with pytest.raises(SignatureError, match="PEM"):
        verify(signed(DELIVERED, cert_server.url("/junk.pem")))


def test_unreachable_certificate_host_is_refused() -> None:
    with pytest.raises(sns_signature.CertificateUnavailable):
        verify(signed(DELIVERED, "http://127.0.0.1:9/SimpleNotificationService-loopback.pem"))


# The token, the topic allowlist and the envelope


def test_request_without_the_url_token_is_refused_before_any_fetch(cert_server: LoopbackServer) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH))
    with pytest.raises(SignatureError, match="token"):
        verify(body, token="")
    assert cert_server.seen == []


def test_topic_not_in_the_allowlist_is_refused(cert_server: LoopbackServer) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH), TopicArn="arn:aws:sns:us-east-1:444455556666:theirs")
    with pytest.raises(SignatureError, match="TopicArn"):
        verify(body, options={"topic_arns": [TOPIC]})
    assert cert_server.seen == []


def test_topic_in_the_allowlist_verifies(cert_server: LoopbackServer) -> None:
    verify(
        signed(DELIVERED, cert_server.url(CERT_PATH)),
        options={"topic_arns": ["arn:aws:sns:eu-west-1:111122223333:x", TOPIC]},
    )


@pytest.mark.parametrize("header", list(aws_sns.HEADER_FIELDS))
def test_sns_header_that_disagrees_with_the_signed_envelope_is_refused(
    cert_server: LoopbackServer, header: str
) -> None:
    # Kept with the receipt: a header naming another topic or message must not sit beside it.
    body = signed(DELIVERED, cert_server.url(CERT_PATH))
    request = sns_request(body)
    request = replace(request, headers={**request.headers, header: "arn:aws:sns:us-east-1:444455556666:theirs"})
    with pytest.raises(SignatureError, match=header):
        adapter_at(body).verify(request, [TOKEN])


def test_subject_is_covered_by_the_signature(cert_server: LoopbackServer) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH), Subject="Delivery event")
    verify(body)
    with pytest.raises(SignatureError):
        verify(dump(json.loads(body) | {"Subject": "Something else"}))


@pytest.mark.parametrize("field", ["MessageId", "Timestamp", "TopicArn", "Type"])
def test_signed_envelope_field_changed_after_signing_is_refused(cert_server: LoopbackServer, field: str) -> None:
    envelope = json.loads(signed(DELIVERED, cert_server.url(CERT_PATH)))
    envelope[field] = {
        "MessageId": "c4a7e9b2-0d13-4f6a-8b5c-000000000000",
        "Timestamp": iso(NOW + 1),
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:other",
        "Type": "UnsubscribeConfirmation",
    }[field]
    with pytest.raises(SignatureError):
        aws_sns.AwsSnsAdapter(clock=lambda: NOW).verify(sns_request(dump(envelope)), [TOKEN])


def test_raw_message_delivery_is_refused_with_the_reason() -> None:
    body = json.loads(DELIVERED)["Message"].encode()
    with pytest.raises(SignatureError, match="raw message delivery"):
        verify_raw(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not json", "JSON"), (b"[1, 2]", "SNS message"), (b'{"Type": "Other", "MessageId": "m"}', "Type")],
)
def test_body_that_is_not_an_sns_envelope_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        verify_raw(body)


def verify_raw(body: bytes) -> None:
    aws_sns.AwsSnsAdapter(clock=lambda: NOW).verify(
        WebhookRequest(method="POST", url="https://dlr.example/", headers={}, body=body, path_token=TOKEN), [TOKEN]
    )


@pytest.mark.parametrize("timestamp", ["2026-11-26T10:00:09", "yesterday", None])
def test_timestamp_without_zone_or_unreadable_is_refused(cert_server: LoopbackServer, timestamp: str | None) -> None:
    envelope = json.loads(signed(DELIVERED, cert_server.url(CERT_PATH)))
    envelope["Timestamp"] = timestamp
    with pytest.raises(SignatureError, match="Timestamp"):
        aws_sns.AwsSnsAdapter(clock=lambda: NOW).verify(sns_request(dump(envelope)), [TOKEN])


# Connection settings


@pytest.mark.parametrize(
    "options", [{}, {"topic_arns": [TOPIC]}, {"topic_arns": [TOPIC, "arn:aws-cn:sns:cn-north-1:111122223333:t"]}]
)
def test_valid_options_are_accepted(options: dict[str, Any]) -> None:
    aws_sns.adapter.validate_options(options)


@pytest.mark.parametrize(
    "options",
    [
        {"topic_arns": TOPIC},
        {"topic_arns": ["arn:aws:sqs:us-east-1:111122223333:queue"]},
        {"topic_arns": ["sms-events"]},
        {"topic_arns": [TOPIC], "signature_version": "2"},
    ],
    ids=["not-a-list", "not-sns", "not-an-arn", "unknown-key"],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="topic_arns"):
        aws_sns.adapter.validate_options(options)


def test_short_url_token_is_refused_and_generated_ones_are_long() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        aws_sns.adapter.validate_secret("short")
    aws_sns.adapter.validate_secret(aws_sns.adapter.generate_secret())


def test_registry_serves_this_adapter() -> None:
    assert get_adapter("aws-sns") is aws_sns.adapter


# Parsing documented event shapes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "notification_successful.json",
            ReceiptEvent(
                provider_message_id="862a8790-60c0-4430-9b2b-658bd1c7e001",
                provider_status="TEXT_SUCCESSFUL",
                status=Status.DELIVERED,
                error_code="",
                error_description="Message has been accepted by phone carrier",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 2, tzinfo=UTC),
                event_id="8b1f2f0e-5c1a-4e0b-9d3a-6f7e8d9c0a11",
                network="310800",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_successful_not_final.json",
            ReceiptEvent(
                provider_message_id="5a0c9d84-2b7e-4f1a-8c3d-7e6f5a4b3c02",
                provider_status="TEXT_SUCCESSFUL",
                status=Status.SENT,
                error_code="",
                error_description="Message has been accepted by phone carrier",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 3, tzinfo=UTC),
                event_id="1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
                network="20801",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_delivered.json",
            ReceiptEvent(
                provider_message_id="5a0c9d84-2b7e-4f1a-8c3d-7e6f5a4b3c02",
                provider_status="TEXT_DELIVERED",
                status=Status.DELIVERED,
                error_code="",
                error_description="Message has been delivered to the recipient's handset",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 9, tzinfo=UTC),
                event_id="c4a7e9b2-0d13-4f6a-8b5c-2e9d7f1a3b22",
                network="20801",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_queued.json",
            ReceiptEvent(
                provider_message_id="5a0c9d84-2b7e-4f1a-8c3d-7e6f5a4b3c02",
                provider_status="TEXT_QUEUED",
                status=Status.ACCEPTED,
                error_code="",
                error_description="Message has been queued for delivery",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC),
                event_id="0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c33",
                network="20801",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_carrier_unreachable.json",
            ReceiptEvent(
                provider_message_id="b3e1f7a2-9c4d-4e8b-a6f5-1d2c3b4a5e03",
                provider_status="TEXT_CARRIER_UNREACHABLE",
                status=Status.UNDELIVERED,
                error_code="TEXT_CARRIER_UNREACHABLE",
                error_description="Temporary error on the recipient's carrier network",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 31, tzinfo=UTC),
                event_id="7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2944",
                network="302720",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_ttl_expired.json",
            ReceiptEvent(
                provider_message_id="e7d6c5b4-a392-4817-b6c5-d4e3f2a1b004",
                provider_status="TEXT_TTL_EXPIRED",
                status=Status.EXPIRED,
                error_code="TEXT_TTL_EXPIRED",
                error_description="Message could not be delivered within the TTL",
                provider_timestamp=datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC),
                event_id="2a3b4c5d-6e7f-4081-92a3-b4c5d6e7f855",
                network="20801",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_spam.json",
            ReceiptEvent(
                provider_message_id="0f1e2d3c-4b5a-4697-8877-665544332205",
                provider_status="TEXT_SPAM",
                status=Status.REJECTED,
                error_code="TEXT_SPAM",
                error_description="Carrier identified the message as spam and blocked it",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 4, tzinfo=UTC),
                event_id="9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b566",
                network="23415",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
        (
            "notification_unknown.json",
            ReceiptEvent(
                provider_message_id="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c06",
                provider_status="TEXT_UNKNOWN",
                status=Status.UNKNOWN,
                error_code="",
                error_description="No final event was received from the carrier",
                provider_timestamp=datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC),
                event_id="5c6d7e8f-9a0b-41c2-93d4-e5f6a7b8c977",
                network="20801",
                price=Decimal("0.095820"),
                currency="USD",
            ),
        ),
    ],
)
def test_event_fixture_parses_to_one_event_with_every_field(
    cert_server: LoopbackServer, name: str, expected: ReceiptEvent
) -> None:
    body = signed(fixture("aws_sns", name), cert_server.url(CERT_PATH))
    verify(body)
    assert aws_sns.adapter.parse(sns_request(body)) == [expected]


def parse_event(**changes: Any) -> ReceiptEvent:
    (parsed,) = aws_sns.adapter.parse(sns_request(edit_event(DELIVERED, **changes)))
    return parsed


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("TEXT_QUEUED", Status.ACCEPTED),
        ("TEXT_PENDING", Status.ACCEPTED),
        ("TEXT_DELIVERED", Status.DELIVERED),
        ("TEXT_TTL_EXPIRED", Status.EXPIRED),
        ("TEXT_UNREACHABLE", Status.UNDELIVERED),
        ("TEXT_CARRIER_UNREACHABLE", Status.UNDELIVERED),
        ("TEXT_BLOCKED", Status.REJECTED),
        ("TEXT_CARRIER_BLOCKED", Status.REJECTED),
        ("TEXT_SPAM", Status.REJECTED),
        ("TEXT_PROTECT_BLOCKED", Status.REJECTED),
        ("TEXT_INVALID", Status.REJECTED),
        ("TEXT_INVALID_MESSAGE", Status.REJECTED),
        ("TEXT_UNKNOWN", Status.UNKNOWN),
        ("TEXT_SOMETHING_AWS_ADDS_LATER", Status.UNKNOWN),
    ],
)
def test_event_types_map_to_the_normalized_vocabulary(event_type: str, status: Status) -> None:
    parsed = parse_event(eventType=event_type)
    failure = status in {Status.EXPIRED, Status.UNDELIVERED, Status.REJECTED}
    assert (parsed.provider_status, parsed.status, parsed.error_code) == (
        event_type,
        status,
        event_type if failure else "",
    )


@pytest.mark.parametrize(
    ("is_final", "status"),
    [(True, Status.DELIVERED), (False, Status.SENT), ("true", Status.SENT), (None, Status.SENT)],
)
def test_successful_is_delivered_only_when_aws_says_it_is_final(is_final: object, status: Status) -> None:
    assert parse_event(eventType="TEXT_SUCCESSFUL", isFinal=is_final).status == status


def test_successful_without_is_final_is_sent() -> None:
    envelope = json.loads(DELIVERED)
    event_json = json.loads(envelope["Message"])
    del event_json["isFinal"]
    event_json["eventType"] = "TEXT_SUCCESSFUL"
    envelope["Message"] = json.dumps(event_json)
    (parsed,) = aws_sns.adapter.parse(sns_request(dump(envelope)))
    assert parsed.status == Status.SENT


def test_retried_delivery_has_the_same_dedupe_key_and_another_notification_another() -> None:
    assert parse_event().dedupe_key() == parse_event().dedupe_key() == "c4a7e9b2-0d13-4f6a-8b5c-2e9d7f1a3b22"
    other = json.loads(DELIVERED) | {"MessageId": "d5b8fa03-1e24-4a7b-9c6d-3fae8e2b4c33"}
    (parsed,) = aws_sns.adapter.parse(sns_request(dump(other)))
    assert parsed.dedupe_key() != parse_event().dedupe_key()


@pytest.mark.parametrize("event_type", ["VOICE_COMPLETED", "MEDIA_DELIVERED", "REGISTRATION_STATUS_CHANGE"])
def test_events_that_are_not_sms_are_acknowledged_and_ignored(event_type: str) -> None:
    with pytest.raises(ControlMessage) as control:
        parse_event(eventType=event_type)
    assert control.value.task == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"messageId": ""}, "messageId"),
        ({"messageId": 42}, "messageId"),
        ({"eventType": None}, "eventType"),
        ({"messageId": "x" * 129}, "provider_message_id"),
    ],
)
def test_malformed_event_is_refused_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_event(**changes)


@pytest.mark.parametrize(
    "value",
    ["1795687209000", 10**19, -1, 0, True, 1e300, 253402300800000],
    ids=["text", "10-to-the-19", "minus-1", "epoch-0", "boolean", "1e300", "year-10000"],
)
def test_unreadable_or_implausible_event_time_is_dropped_and_the_receipt_kept(value: object) -> None:
    # SNS takes a 4xx as delivered: refusing would lose the receipt; the raw body keeps the time.
    event = parse_event(eventTimestamp=value)
    assert (event.provider_timestamp, event.status) == (None, Status.DELIVERED)


@pytest.mark.parametrize("message", ["not json", "[1]", None])
def test_message_that_is_not_an_event_object_is_refused(message: object) -> None:
    body = dump(json.loads(DELIVERED) | {"Message": message})
    with pytest.raises(PayloadError, match="Message"):
        aws_sns.adapter.parse(sns_request(body))


def test_event_without_timestamp_has_none_and_long_description_is_cut() -> None:
    envelope = json.loads(edit_event(DELIVERED, messageStatusDescription="d" * 300))
    event_json = json.loads(envelope["Message"])
    del event_json["eventTimestamp"]
    envelope["Message"] = json.dumps(event_json)
    (parsed,) = aws_sns.adapter.parse(sns_request(dump(envelope)))
    assert (parsed.provider_timestamp, parsed.error_description) == (None, "d" * 255)


def test_subscription_confirmation_asks_for_the_confirmation_task(cert_server: LoopbackServer) -> None:
    body = signed(fixture("aws_sns", "subscription_confirmation.json"), cert_server.url(CERT_PATH))
    verify(body, options={"topic_arns": [TOPIC]})
    with pytest.raises(ControlMessage) as control:
        aws_sns.adapter.parse(sns_request(body))
    assert (control.value.reason, control.value.task, control.value.args_for_task) == (
        "subscription confirmation",
        "receipts.tasks.confirm_sns_subscription",
        (json.loads(body)["SubscribeURL"],),
    )


def test_unsubscribe_confirmation_is_acknowledged_without_a_task(cert_server: LoopbackServer) -> None:
    body = signed(fixture("aws_sns", "unsubscribe_confirmation.json"), cert_server.url(CERT_PATH))
    verify(body)
    with pytest.raises(ControlMessage) as control:
        aws_sns.adapter.parse(sns_request(body))
    assert (control.value.reason, control.value.task) == ("unsubscribe confirmation", "")


def test_confirmation_with_its_token_changed_after_signing_is_refused(cert_server: LoopbackServer) -> None:
    body = signed(fixture("aws_sns", "subscription_confirmation.json"), cert_server.url(CERT_PATH))
    forged = dump(json.loads(body) | {"SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Other"})
    with pytest.raises(SignatureError):
        verify(forged)


# Through the real endpoint


@pytest.fixture
def sns_connection(db: None) -> Any:
    return ConnectionFactory(provider="aws-sns", secrets=[TOKEN], options={"topic_arns": [TOPIC]})


def post(client: Any, connection: Any, body: bytes, *, token: str = TOKEN) -> Any:
    return client.post(
        f"/hooks/{connection.slug}/{token}/",
        data=body,
        content_type="text/plain; charset=UTF-8",
        headers={"x-amz-sns-message-type": json.loads(body)["Type"]},
    )


@pytest.mark.django_db
def test_notification_is_stored_and_moves_its_message(client: Any, sns_connection: Any, cert_server: Any) -> None:
    message = MessageFactory(connection=sns_connection, provider_message_id="b3e1f7a2-9c4d-4e8b-a6f5-1d2c3b4a5e03")
    body = signed(
        fixture("aws_sns", "notification_carrier_unreachable.json"), cert_server.url(CERT_PATH), timestamp=time.time()
    )
    response = post(client, sns_connection, body)
    assert response.status_code == 200
    assert response.json() == {"received": 1, "duplicates": 0, "applied": 1}
    assert post(client, sns_connection, body).json()["duplicates"] == 1  # an SNS retry
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status, receipt.error_code, receipt.dedupe_key) == (
        "TEXT_CARRIER_UNREACHABLE",
        Status.UNDELIVERED,
        "TEXT_CARRIER_UNREACHABLE",
        "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2944",
    )
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 0, 31, tzinfo=UTC)
    assert receipt.headers["x-amz-sns-message-type"] == "Notification"
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "TEXT_CARRIER_UNREACHABLE")
    assert cert_server.seen == [CERT_PATH]


@pytest.mark.django_db
def test_notification_from_another_topic_is_refused(client: Any, sns_connection: Any, cert_server: Any) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH), timestamp=time.time(), TopicArn=TOPIC + "-theirs")
    response = post(client, sns_connection, body)
    assert response.status_code == 401
    assert "TopicArn" in response.json()["error"]
    assert not Receipt.objects.exists()


@pytest.mark.django_db
def test_notification_without_the_url_token_is_refused(client: Any, sns_connection: Any, cert_server: Any) -> None:
    body = signed(DELIVERED, cert_server.url(CERT_PATH), timestamp=time.time())
    assert post(client, sns_connection, body, token=OTHER_TOKEN).status_code == 401
    assert client.post(f"/hooks/{sns_connection.slug}/", data=body, content_type="text/plain").status_code == 401
    assert not Receipt.objects.exists()
    assert cert_server.seen == []


@pytest.mark.django_db
def test_stale_notification_is_refused(client: Any, sns_connection: Any, cert_server: Any) -> None:
    stale = time.time() - aws_sns.TOLERANCE_SECONDS - 60
    response = post(client, sns_connection, signed(DELIVERED, cert_server.url(CERT_PATH), timestamp=stale))
    assert response.status_code == 401
    assert not Receipt.objects.exists()


@pytest.fixture
def sns_api() -> Iterator[LoopbackServer]:
    """A second loopback server standing in for the SNS API that SubscribeURL points at."""
    server = LoopbackServer({"/": (200, b"<ConfirmSubscriptionResponse/>")})
    yield server
    server.stop()


def confirm_url(server: LoopbackServer) -> str:
    return server.url(f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f")


@pytest.mark.django_db
def test_subscription_confirmation_is_answered_queued_and_confirmed_once(
    client: Any, sns_connection: Any, cert_server: LoopbackServer, sns_api: LoopbackServer, monkeypatch: Any
) -> None:
    queued: list[tuple[Any, ...]] = []
    task = celery_app.tasks["receipts.tasks.confirm_sns_subscription"]
    monkeypatch.setattr(task, "apply_async", lambda args=(), **kw: queued.append(tuple(args)))
    body = signed(
        fixture("aws_sns", "subscription_confirmation.json"),
        cert_server.url(CERT_PATH),
        timestamp=time.time(),
        SubscribeURL=confirm_url(sns_api),
    )
    response = post(client, sns_connection, body)
    assert (response.status_code, response.json()) == (200, {"control": "subscription confirmation"})
    assert not Receipt.objects.exists()
    assert queued == [(confirm_url(sns_api),)]
    assert sns_api.seen == []  # nothing called on the request path
    assert confirm_sns_subscription(*queued[0]) is True
    assert sns_api.seen == [confirm_url(sns_api).removeprefix(sns_api.url(""))]


@pytest.mark.django_db
def test_subscription_confirmation_from_another_topic_is_refused_and_not_queued(
    client: Any, sns_connection: Any, cert_server: LoopbackServer, monkeypatch: Any
) -> None:
    queued: list[Any] = []
    task = celery_app.tasks["receipts.tasks.confirm_sns_subscription"]
    monkeypatch.setattr(task, "apply_async", lambda *a, **kw: queued.append(a))
    body = signed(
        fixture("aws_sns", "subscription_confirmation.json"),
        cert_server.url(CERT_PATH),
        timestamp=time.time(),
        TopicArn="arn:aws:sns:us-east-1:444455556666:theirs",
    )
    assert post(client, sns_connection, body).status_code == 401
    assert queued == []


# The confirmation task


def test_confirmation_task_refuses_a_url_off_the_sns_hosts_without_calling_it(sns_api: LoopbackServer) -> None:
    url = confirm_url(sns_api).replace("127.0.0.1", "localhost")
    assert confirm_sns_subscription(url) is False
    assert sns_api.seen == []


def test_confirmation_task_can_run_again_safely(sns_api: LoopbackServer) -> None:
    assert confirm_sns_subscription(confirm_url(sns_api)) is True
    assert confirm_sns_subscription(confirm_url(sns_api)) is True
    assert len(sns_api.seen) == 2


def test_confirmation_task_gives_up_on_a_refused_token(sns_api: LoopbackServer) -> None:
    sns_api.routes["/"] = (403, b"<ErrorResponse/>")
    assert confirm_sns_subscription(confirm_url(sns_api)) is False
    assert len(sns_api.seen) == 1


def test_confirmation_task_retries_on_a_server_error(sns_api: LoopbackServer) -> None:
    sns_api.routes["/"] = (503, b"")
    # Called directly, Celery's autoretry re-raises instead of scheduling the retry.
    with pytest.raises(SubscribeUrlUnavailable):
        confirm_sns_subscription(confirm_url(sns_api))
    assert len(sns_api.seen) == 1


def test_confirmation_task_retries_on_a_network_error() -> None:
    with pytest.raises(requests.ConnectionError):
        confirm_sns_subscription(f"http://127.0.0.1:9/?Action=ConfirmSubscription&TopicArn={TOPIC}")


def test_confirmation_task_retries_with_backoff() -> None:
    task = celery_app.tasks["receipts.tasks.confirm_sns_subscription"]
    assert (task.retry_backoff, task.max_retries, task.acks_late) == (True, 8, True)
    assert requests.ConnectionError in task.autoretry_for


def test_tolerance_covers_the_sns_retry_window() -> None:
    # SNS stops retrying an HTTP/S delivery within 3,600 s and keeps the original Timestamp.
    assert timedelta(seconds=aws_sns.TOLERANCE_SECONDS) > timedelta(hours=1)


class TestAwsSnsExtremes(ExtremeInputSuite):
    provider = "aws-sns"
    secret = TOKEN
    options = {"topic_arns": [TOPIC]}
    message_id = "b3e1f7a2-9c4d-4e8b-a6f5-1d2c3b4a5e03"

    @pytest.fixture(autouse=True)
    def _certificate_url(self, cert_server: LoopbackServer) -> None:
        self.cert_url = cert_server.url(CERT_PATH)

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        envelope = json.loads(fixture("aws_sns", "notification_carrier_unreachable.json"))
        event = json.loads(envelope["Message"])
        event["messageId"] = slots.get("message_id", self.message_id)
        event["eventType"] = "TEXT_" + slots["status"] if "status" in slots else event["eventType"]
        event["messageStatusDescription"] = slots.get("description", event["messageStatusDescription"])
        # eventTimestamp is the number AWS sends: the time as a JSON number where it is one.
        raw = json_value(slots["time"]) if "time" in slots else slots.get("number")
        if raw is not None:
            event["eventTimestamp"] = "<<time>>"
        envelope["Message"] = dumps(event, time=raw or "").decode()
        body = signed(json.dumps(envelope).encode(), self.cert_url, timestamp=time.time())
        return post(client, connection, body)
