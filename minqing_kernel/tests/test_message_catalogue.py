"""The message catalogue (contracts/messages.yaml) is the one place for text people read.

These tests read the source: no Chinese text outside the catalogue, every key the code
names exists and gets the parameters its templates use, every marshmallow message and
every field of a schema has its Chinese. They need no server."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import marshmallow
import pytest
from marshmallow import Schema, ValidationError, fields, validate

from minqing_kernel import messages
from minqing_kernel.errors import Invalid, NotFound, field_errors, validated

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("gateway", "services", "minqing_kernel")
# Not our words: the 平安365 simulator plays the partner platform, and says what it says.
NOT_OURS = {"services/integration365/simulator.py"}
CJK = re.compile(r"[\u4e00-\u9fff]")  # ideographs: punctuation alone is no text
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

HOW_TO_FIX = """\
Chinese text outside the message catalogue. Text a person reads comes from
contracts/messages.yaml, never from a string in the code (issue #12). For each line below:
  1. add an entry to contracts/messages.yaml, under its part's section, e.g.
       dispatch.case-not-found:
         en: "No case {case_id}."
         zh: "案卷 {case_id} 不存在。"
  2. in the code, replace the two strings by the key:
       raise NotFound.of("dispatch.case-not-found", case_id=case_id)   # a problem
       messages.say("dispatch.some-text", n=3).zh                       # any other text
     (validated(schema, payload, "report") and uuid_or_404(value, "case") take a noun.* key)
Comments and docstrings may use Chinese terms; string values may not.
Found:
"""


def python_files():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/tests/" in rel or "/migrations/" in rel or rel in NOT_OURS:
                continue
            yield rel, ast.parse(path.read_text(encoding="utf-8"))


def docstrings(tree) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_chinese_text_is_written_in_the_code_outside_the_catalogue():
    # given every module of the services, the gateway and the kernel
    found = []
    for rel, tree in python_files():
        skip = docstrings(tree)
        for node in ast.walk(tree):
            # when a string value (not a docstring) holds Chinese text
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in skip and CJK.search(node.value)):
                found.append(f"  {rel}:{node.lineno}: {node.value[:60]!r}")
    # then there is none: it belongs in the catalogue
    assert not found, HOW_TO_FIX + "\n".join(found)


def keyed_calls():
    """(file, line, key, keyword names or None if **splatted) for each call naming a key."""
    for rel, tree in python_files():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            names = None if any(k.arg is None for k in node.keywords) else \
                {k.arg for k in node.keywords} - messages.RESERVED_PARAMS
            args = node.args
            if fname in ("of", "say", "zh", "en") and args and isinstance(args[0], ast.Constant) \
                    and isinstance(args[0].value, str):
                yield rel, node.lineno, args[0].value, names
            elif fname == "validated" and len(args) >= 3 and isinstance(args[2], ast.Constant):
                yield rel, node.lineno, f"noun.{args[2].value}", set()
            elif fname == "uuid_or_404" and len(args) >= 2 and isinstance(args[1], ast.Constant):
                yield rel, node.lineno, f"noun.{args[1].value}", set()


def test_every_key_the_code_names_is_in_the_catalogue_with_the_parameters_it_gets():
    # given every call naming a catalogue key with a literal
    catalogue = messages.catalogue()
    wrong = []
    for rel, line, key, names in keyed_calls():
        # when its key is looked up and its templates read
        if key not in catalogue:
            wrong.append(f"  {rel}:{line}: no key {key!r} in contracts/messages.yaml")
            continue
        if names is None:
            continue
        wanted = messages.params_of(catalogue[key]["en"]) | messages.params_of(
            catalogue[key]["zh"])
        if names != wanted:
            wrong.append(f"  {rel}:{line}: {key} takes {sorted(wanted)}, given {sorted(names)}")
    # then each exists and is given exactly what it uses
    assert not wrong, "Calls that would fail or lose a value:\n" + "\n".join(wrong)


def test_each_entry_has_both_languages_and_no_parameter_problem_of_takes_for_itself():
    for key, entry in messages.catalogue().items():
        assert not messages.params_of(entry["en"]) & messages.RESERVED_PARAMS, key
        assert entry["zh"].strip() and entry["en"].strip(), key


def marshmallow_templates():
    """Every message marshmallow's fields and validators may say by default."""
    for _, cls in inspect.getmembers(fields, inspect.isclass):
        if issubclass(cls, fields.Field):
            for key, text in getattr(cls, "default_error_messages", {}).items():
                yield f"{cls.__name__}.{key}", text
    for _, cls in inspect.getmembers(validate, inspect.isclass):
        if cls is validate.Range:  # its messages are built from its operators' words
            r = validate.Range
            for m in (r.message_gte, r.message_gt):
                yield "Range.message_min", r.message_min.format(min_op=m)
                for n in (r.message_lte, r.message_lt):
                    yield "Range.message_all", r.message_all.format(min_op=m, max_op=n)
            for n in (r.message_lte, r.message_lt):
                yield "Range.message_max", r.message_max.format(max_op=n)
            continue
        for attr, text in vars(cls).items():
            if (attr.startswith("message") or attr == "default_message") and isinstance(text, str):
                yield f"{cls.__name__}.{attr}", text
    for key, text in marshmallow.Schema._default_error_messages.items():
        yield f"Schema.{key}", text


def test_every_message_marshmallow_can_give_has_a_chinese_one_in_the_catalogue():
    # given marshmallow's default messages, formatted as it formats them
    missing = []
    for where, template in marshmallow_templates():
        sample = re.sub(r"\{[^}]*\}", "7", template)
        # when the catalogue is asked for its Chinese
        said = messages.field_message(sample)
        if said.key == messages.FIELD_ERROR_FALLBACK:
            missing.append(f"  {where}: {template!r}")
    # then it has one (a field-error.* entry whose en is marshmallow's template)
    assert not missing, "Add field-error.* entries to contracts/messages.yaml for:\n" + \
        "\n".join(missing)


def schema_field_names():
    import services.dispatch.schemas
    import services.identity.schemas
    import services.intake.schemas
    import services.rewards.schemas
    for module in (services.dispatch.schemas, services.identity.schemas,
                   services.intake.schemas, services.rewards.schemas):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Schema) and cls is not Schema:
                for field_name, field in cls._declared_fields.items():
                    if not field.dump_only:
                        yield cls.__name__, field.data_key or field_name


def test_every_field_a_request_may_get_wrong_has_a_chinese_name():
    # given every field of every schema a request is loaded with
    missing = sorted({f"  {schema}.{name}" for schema, name in schema_field_names()
                      if f"field.{name}" not in messages.catalogue()})
    # then the catalogue names it (for detail_zh: 描述：长度须在 2 到 2000 个字符之间)
    assert not missing, "Add field.<name> entries to contracts/messages.yaml for:\n" + \
        "\n".join(missing)


class Report(Schema):
    description = fields.String(required=True, validate=validate.Length(min=2, max=2000))
    location = fields.Dict(required=True)


def test_a_field_message_carries_its_chinese_and_english():
    # given a description too long
    with pytest.raises(ValidationError) as err:
        Report().load({"description": "长" * 2001, "location": {}})
    # when it becomes a problem's errors
    errors = field_errors(err.value.messages)
    # then each has marshmallow's English and the catalogue's Chinese
    assert errors == [{"field": "description", "message": "Length must be between 2 and 2000.",
                       "message_zh": "长度须在 2 到 2000 个字符之间。"}]


def test_an_invalid_request_says_what_is_wrong_in_chinese_without_english_words():
    # given a report without a description and with an unknown field
    with pytest.raises(Invalid) as problem:
        validated(Report(), {"location": {}, "colour": "red"}, "report")
    # when its detail is read
    body = problem.value.to_problem()
    # then the Chinese names the fields by their Chinese names, with no English word
    assert "描述" in body["detail_zh"] and "爆料" in body["detail_zh"]
    assert not LATIN_WORD.search(body["detail_zh"]), body["detail_zh"]
    assert all(e["message_zh"] and not LATIN_WORD.search(e["message_zh"])
               for e in body["errors"])
    assert "description" in body["detail"]


def test_a_problem_built_from_a_key_says_the_catalogue_words_in_both_languages():
    problem = NotFound.of("dispatch.case-not-found", case_id="c-1")
    assert (problem.detail_en, problem.detail_zh) == ("No case c-1.", "案卷 c-1 不存在。")
    assert problem.args == ("No case c-1.", "案卷 c-1 不存在。", [], "not-found")


def test_role_names_are_the_glossary_s():
    assert messages.names_zh("role", ["resident", "patroller", "operator", "handler",
                                      "leader", "lawyer", "admin", "discipline",
                                      "partner"]) == \
        "居民、巡防队员、指挥中心操作员、处置人员、领导、律师、管理员、纪工委、合作平台"


@pytest.mark.parametrize("name", ["a[b", "x]", "[", "a[1][2]", "", "\x1f\u00c1[", "a.b"])
def test_an_unknown_field_of_any_name_is_refused_in_chinese_never_a_crash(name):
    # given a query with a field a client made up, named anything at all
    class Query(Schema):
        status = fields.String()
    # when it is validated
    with pytest.raises(Invalid) as problem:
        validated(Query(), {name: "x"}, "case-query")
    # then it is a 422 whose Chinese calls it 其他内容 (other content)
    assert "其他内容" in problem.value.detail_zh
