"""The SMS port: Aliyun's signature against the example in its documentation (no network),
and the simulator answering the same adapter the real provider does."""
from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from services.identity.sms import AliyunSmsSender, SmsFailed, aliyun_signature, percent_encode
from services.identity.sms_simulator import SmsSimulator

# Aliyun's documented SendSms example (短信服务 HTTP 协议及签名, "data from ALi document
# demo"): AccessKeyId testId, AccessKeySecret testSecret, and the signature it gives.
DOCUMENTED = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
    "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOCUMENTED_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_the_signature_of_the_documented_request_is_the_documented_one():
    assert aliyun_signature(DOCUMENTED, "testSecret") == DOCUMENTED_SIGNATURE


def test_a_changed_parameter_or_secret_changes_the_signature():
    assert aliyun_signature({**DOCUMENTED, "PhoneNumbers": "15300000002"},
                            "testSecret") != DOCUMENTED_SIGNATURE
    assert aliyun_signature(DOCUMENTED, "otherSecret") != DOCUMENTED_SIGNATURE


def test_pop_encoding_keeps_only_unreserved_characters():
    assert percent_encode("a b*c~d/e+") == "a%20b%2Ac~d%2Fe%2B"


def test_the_adapter_signs_what_it_sends_as_the_documentation_says():
    sender = AliyunSmsSender("testId", "testSecret", "阿里云短信测试专用", "SMS_71390007",
                             timestamp=lambda: "2017-07-12T02:42:19Z",
                             nonce=lambda: "45e25e9b-0a6f-4070-8c85-2956eda1b466")
    params = sender.signed_params("15300000001", "123456", "123")
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    assert params["Signature"] == aliyun_signature(unsigned, "testSecret")
    assert params["TemplateParam"] == '{"code":"123456"}'
    assert (params["Action"], params["Version"]) == ("SendSms", "2017-05-25")


@pytest.fixture
def simulator():
    app = SmsSimulator("sim-id", "sim-secret", "admin-token")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def sent(base: str, phone: str) -> list[dict]:
    response = requests.get(f"{base}_sim/messages", params={"phone": phone}, timeout=5,
                            headers={"Authorization": "Bearer admin-token"})
    response.raise_for_status()
    return response.json()["items"]


def test_given_the_simulator_when_the_adapter_sends_a_code_then_the_simulator_shows_it(
        simulator):
    _, base = simulator
    sender = AliyunSmsSender("sim-id", "sim-secret", "民情E点通", "SMS_1", endpoint=base)
    assert sender.send("13900000009", "654321", "outbox-1")
    assert [(m["phone"], m["code"]) for m in sent(base, "13900000009")] == [
        ("13900000009", "654321")]


def test_a_resend_of_the_same_outbox_row_is_one_message(simulator):
    _, base = simulator
    sender = AliyunSmsSender("sim-id", "sim-secret", "民情E点通", "SMS_1", endpoint=base)
    first = sender.send("13900000009", "654321", "outbox-1")
    assert sender.send("13900000009", "654321", "outbox-1") == first
    assert len(sent(base, "13900000009")) == 1


def test_a_wrong_secret_is_refused_as_aliyun_refuses_it(simulator):
    _, base = simulator
    sender = AliyunSmsSender("sim-id", "not-the-secret", "民情E点通", "SMS_1", endpoint=base)
    with pytest.raises(SmsFailed) as refused:
        sender.send("13900000009", "654321", "outbox-2")
    assert refused.value.code == "SignatureDoesNotMatch"
    assert sent(base, "13900000009") == []


def test_a_provider_outage_is_a_failure_the_caller_sees(simulator):
    app, base = simulator
    app.down = True
    sender = AliyunSmsSender("sim-id", "sim-secret", "民情E点通", "SMS_1", endpoint=base)
    with pytest.raises(SmsFailed) as failed:
        sender.send("13900000009", "654321", "outbox-3")
    assert failed.value.code == "isp.SYSTEM_ERROR"


def test_an_unreachable_provider_is_a_transport_failure():
    sender = AliyunSmsSender("id", "secret", "民情E点通", "SMS_1",
                             endpoint="http://127.0.0.1:9/", timeout_s=1)
    with pytest.raises(SmsFailed) as failed:
        sender.send("13900000009", "654321", "outbox-4")
    assert failed.value.code == "transport"


def test_the_admin_api_needs_the_installation_token(simulator):
    _, base = simulator
    assert requests.get(f"{base}_sim/messages", timeout=5).status_code == 403
    assert requests.get(f"{base}_sim/messages", timeout=5,
                        headers={"Authorization": "Bearer guess"}).status_code == 403
