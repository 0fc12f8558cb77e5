"""The pii stage on crafted text: exact replacements, look-alikes left alone, actions, properties."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cleanmix.filters import pii_validators as check
from cleanmix.filters.pii import DETECTORS, PII, find_spans, replace_spans
from cleanmix.pipelines.registry import stage_types
from cleanmix.pipelines.stage import REASON


def frame(*texts: str | None) -> pl.DataFrame:
    return pl.DataFrame({"id": list(range(len(texts))), "text": list(texts)}, schema={"id": pl.Int64, "text": pl.String})


def replaced(text: str, **params: object) -> str:
    return PII(**params).transform(frame(text))[0]["text"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe+news@mail.example.co.uk today.", "Write to <EMAIL> today."),
        ("邮箱test@qq.com和test@163.com", "邮箱<EMAIL>和<EMAIL>"),
        ("Call (505) 498-8487 or 505.498.8487 ext. 12.", "Call <PHONE> or <PHONE>."),
        ("Office: +41 (0)85 806 98 67, fax +44 20 7946 0958", "Office: <PHONE>, fax <PHONE>"),
        ("Phone: 0479 50 54 03", "Phone: <PHONE>"),
        ("我的手机号是13812345678，请联系", "我的手机号是<PHONE>，请联系"),
        ("手机号是+86 138-1234-5678", "手机号是<PHONE>"),
        ("电话：010-62751234", "电话：<PHONE>"),
        ("They're not answering at 9493 7477", "They're not answering at <PHONE>"),
        ("京ICP备16044242号 订阅电话：400-0800-888", "京ICP备16044242号 订阅电话：<PHONE>"),
        ("server 192.168.0.12:8080 and 2001:db8::8a2e:370:7334 down", "server <IP>:8080 and <IP> down"),
        ("身份证号110101199003077475", "身份证号<CN_ID>"),
        ("身份证 1101 0119 9001 0112 37 和 11010119900101123x", "身份证 <CN_ID> 和 11010119900101123x"),
        ("card 4111 1111 1111 1111 exp 12/27", "card <CREDIT_CARD> exp 12/27"),
        ("银行卡号 4111111111111111", "银行卡号 <CREDIT_CARD>"),
        ("Amex 3782-822463-10005.", "Amex <CREDIT_CARD>."),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN <IBAN> please"),
        ("my iban is de89370400440532013000", "my iban is <IBAN>"),
        ("SSN: 078-05-1120.", "SSN: <US_SSN>."),
        ("Abashiri +81 158-23-2012", "Abashiri <PHONE>"),  # a phone, not an SSN
        ("key AKIAIOSFODNN7EXAMPLE", "key <SECRET>"),
        ("token=ghp_16C7e42F292c6912E7710c838347Ae178B4a", "token=<SECRET>"),
        ("OPENAI_API_KEY=sk-proj-4fT9xQ2LmZ8vB1nK7rW3yH6jD0sA5cE", "OPENAI_API_KEY=<SECRET>"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "jwt <SECRET> end",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
            "-----END RSA PRIVATE KEY-----\nok",
            "<SECRET>\nok",
        ),
    ],
)
def test_replaces_with_typed_placeholders(text: str, expected: str) -> None:
    assert replaced(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "订单号110101199003077476已发货",  # 18 digits, wrong check digit
        "order 110101199013077475 shipped",  # month 13
        "ref 4111111111111112 and 4111 1111 1111 1112",  # not Luhn
        "编号A4111111111111111、ABC4111111111111111XYZ、ORDER12345678901234",
        "统一社会信用代码91310000552936878J",
        "on 2019-07-15, 15.07.2019, 07/15/2019 at 12:30:45 and 2019-07-15 10:30:00",
        "upgrade to v1.2.3 or version 2.0.0.1 (build 10.0.19041.1) or 3.14159265358",
        "It costs $1,234,567.89 or ¥12345.00, about 1,234,567 people, 1 234 567 units",
        "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2",
        "seasons 2019-2020, 1998-2005; pages 115-124; ISSN 0022-2860",
        "invalid SSNs 000-12-3456, 666-12-3456, 912-34-5678",
        "IBAN GB82 WEST 1234 5698 7654 33",  # wrong check digits
        "std::vector<int> x; a::b; dead::beef; 12:30:45; MAC 00:1A:2B:3C:4D:5E",
        "logo@2x.png and @handle and user@localhost",
        "scikit-learn is sk-learn-is-a-great-library-for-machine-learning",
        "数字12345678901不是手机号",
        "population 12345678 in 2020",
        "https://facebook.com/pages/p/388213067901331?id=4111111111111111",
        "发票号码：02840189",
        "订单号：174208675，请客服联系我",
    ],
)
def test_leaves_lookalikes_alone(text: str) -> None:
    assert replaced(text) == text


def test_validators() -> None:
    assert check.luhn("4111111111111111") and not check.luhn("4111111111111112")
    assert check.cn_id("11010119900307747X".replace("X", "5")) and check.cn_id("11010519491231002X")
    assert not check.cn_id("110101199002307475")  # 30 February
    assert check.iban("GB82WEST12345698765432") and not check.iban("GB82WEST12345698765433")
    assert not check.us_ssn("666", "12", "3456") and check.us_ssn("078", "05", "1120")


def test_kinds_select_what_is_replaced() -> None:
    text = "mail a@b.io or call +1 505 498 8487"
    assert replaced(text, kinds=["email"]) == "mail <EMAIL> or call +1 505 498 8487"


def test_config_is_validated() -> None:
    assert PII.model_validate({"type": "pii", "kinds": ["email", "cn_id"]}).kinds == ("email", "cn_id")
    for bad in ({"kinds": ["passport"]}, {"kinds": []}, {"action": "mask"}, {"placeholder": ""}, {"extra": 1}):
        with pytest.raises(ValidationError):
            PII.model_validate(bad)


def test_placeholder_pattern() -> None:
    assert replaced("a@b.io", placeholder="[{kind}]") == "[email]"


@pytest.mark.parametrize("placeholder", ["x@y.com", "{kind} 13812345678"])
def test_placeholder_that_is_pii_is_refused(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="looks like PII"):
        PII(placeholder=placeholder)


def test_counts_documents_per_kind() -> None:
    df = frame("a@b.io c@d.io", "+1 505 498 8487", "nothing here", None)
    out, modified = PII().transform(df)
    assert modified == {f"pii:{k}": int(k == "email") + int(k == "phone") for k in PII().kinds}
    assert out["text"].to_list() == ["<EMAIL> <EMAIL>", "<PHONE>", "nothing here", None]


def test_annotate_adds_spans_and_changes_nothing() -> None:
    df = frame("邮箱test@qq.com，电话13812345678", "none", None)
    out, modified = PII(action="annotate").transform(df)
    assert out["text"].to_list() == df["text"].to_list() and modified == {}
    spans = out["pii_spans"].to_list()
    text = df["text"][0]
    assert [(s["kind"], text[s["start"] : s["end"]]) for s in spans[0]] == [("email", "test@qq.com"), ("phone", "13812345678")]
    assert spans[1:] == [[], None]


def test_drop_rejects_with_reason() -> None:
    df = frame("keep me", "mail a@b.io and 4111 1111 1111 1111", "card 4111111111111111", None)
    result = PII(action="drop", kinds=["credit_card", "email"]).process(df)
    assert result.kept["text"].to_list() == ["keep me", None]
    assert result.rejected[REASON].to_list() == ["pii:credit_card", "pii:credit_card"]
    assert result.kept.height + result.rejected.height == df.height


def test_name_labels_counts_and_column() -> None:
    stage = PII(name="scrub", action="annotate")
    assert "scrub_spans" in stage.transform(frame("a@b.io"))[0].columns
    assert PII(name="scrub").transform(frame("a@b.io"))[1]["scrub:email"] == 1


def test_registered_and_usable_on_arrow() -> None:
    assert stage_types()["pii"] is PII
    table = PII().filter(pa.table({"id": [1], "text": ["a@b.io"]}))
    assert isinstance(table, pa.Table) and table.column("text").to_pylist() == ["<EMAIL>"]


def test_stats_are_counted_per_kind_and_redacted() -> None:
    from cleanmix.pipelines.stats import StageStats

    stats = StageStats("pii", "pii")
    for batch in (frame("mail jane@example.com or 13812345678; also bob@example.org", "x@y.io"), frame("z@w.io")):
        stats.record(batch, PII().process(batch), 0.0)
    detail = stats.to_json()
    assert detail["modified"] == {"pii:email": 3, "pii:phone": 1}
    assert detail["tallies"] == {"documents": {"email": 3, "phone": 1}, "occurrences": {"email": 4, "phone": 1}}
    assert detail["examples"]["phone"] == [{"shape": "99999999999", "context": "mail <EMAIL> or <PHONE>; also <EMAIL>"}]
    assert len(detail["examples"]["email"]) == 4
    dumped = repr(detail)
    assert all(raw not in dumped for raw in ["jane", "13812345678", "bob@", "x@y.io", "z@w.io"])


# --- properties -----------------------------------------------------------------------------

VALUES = st.sampled_from(
    [
        "a.b@example.com", "13812345678", "+86 138-1234-5678", "(505) 498-8487", "+44 20 7946 0958",
        "0479 50 54 03", "192.168.1.1", "2001:db8::1", "110101199003077475", "4111 1111 1111 1111",
        "GB82WEST12345698765432", "078-05-1120", "AKIAIOSFODNN7EXAMPLE", "2019-07-15", "v1.2.3",
        "1,234,567", "978-3-16-148410-0", "4111111111111112", "12:30:45",
    ]
)  # fmt: skip
PIECES = st.one_of(
    VALUES,
    st.text(alphabet="0123456789 -.()+:@xX", max_size=12),
    st.text(alphabet="abcxyz电话号码身份证 ,.:;\n", max_size=12),
    st.sampled_from(["Tel: ", "phone ", "电话：", " call ", "version "]),
)
TEXTS = st.lists(PIECES, max_size=8).map("".join)
PLAIN = PII()


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_idempotent(text: str) -> None:
    once = replaced(text)
    assert replaced(once) == once


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_only_spans_change(text: str) -> None:
    """Replacing = the text between the annotated spans, kept verbatim, around the placeholders."""
    spans = PII(action="annotate").transform(frame(text))[0]["pii_spans"][0].to_list()
    expected = replace_spans(text, [(s["start"], s["end"], s["kind"]) for s in spans], PLAIN.placeholders())
    assert replaced(text) == expected


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_prefilter_never_misses(text: str) -> None:
    """The Rust prefilters are a superset: same spans as plain Python over every detector."""
    found = PLAIN.find(frame(text))
    assert (found.spans or [[]])[0] == find_spans(text, PLAIN.detectors(), PLAIN.placeholders())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), max_size=6))
def test_documents_in_equal_documents_out(texts: list[str | None]) -> None:
    df = frame(*texts)
    out, _ = PII().transform(df)
    assert out["id"].to_list() == df["id"].to_list()
    assert [t is None for t in out["text"]] == [t is None for t in texts]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(["@", ".", "a@b.io", "x.y@mail.example.com", "-", " "]), st.text(alphabet="ab1._%+-@ .", max_size=8)),
        max_size=10,
    ).map("".join)
)
def test_email_shortcut_matches_finditer(text: str) -> None:
    (email,) = [d for d in DETECTORS if d.kind == "email"]
    assert [m.span() for m in email.matches(email.pattern, text)] == [m.span() for m in email.pattern.finditer(text)]
