"""The pipeline from raw text to a chat model (llmcourse.pipeline), its report card (llmcourse.report) and
its command line (python -m llmcourse): every stage and subcommand on a tiny configuration, resuming an
interrupted run to the same weights, refusing bad arguments with exit status 2, and the terminal chat
driven through standard input."""

import json
import subprocess
import sys

import pytest
import torch

from llmcourse import pipeline, report
from llmcourse.__main__ import main
from llmcourse.checks import ArgumentError

TINY = dict(steps=6, n_layer=1, n_head=2, n_embd=32, block_size=64, batch_size=4, show_progress=False)
TINY_SFT = dict(steps=3, batch_size=4, block_size=256, n_arithmetic=12, n_orders=12, n_instructions=12, n_facts=12,
                show_progress=False)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    pipeline.tokenizer(root / "tok", vocab_size=300, text_chars=200_000)
    pipeline.pretrain(root / "base", root / "tok", **TINY)
    pipeline.sft(root / "sft", root / "base", **TINY_SFT)
    pipeline.prefer(root / "dpo", root / "sft", n_pairs=8, batch_size=4)
    return root


def test_each_stage_writes_weights_tokenizer_and_a_card_that_names_its_input(chain):
    tok_card = json.loads((chain / "tok" / "card.json").read_text())
    base, tok, base_card = pipeline.load(chain / "base")
    sft, sft_tok, sft_card = pipeline.load(chain / "sft")
    dpo, _, dpo_card = pipeline.load(chain / "dpo")
    assert tok.vocab_size == 300 and base.vocab_size == 300 and base_card["settings"]["tokenizer_sha256"] == tok_card["tokenizer_sha256"]
    assert sft_tok.vocab_size == 306 and sft.vocab_size == 306 and sft.context_size == 256    # + 2 chat, 4 tool ids
    assert sft_card["from"]["sha256"] == base_card["sha256"] and dpo_card["from"]["sha256"] == sft_card["sha256"]
    assert sft_card["data"]["train_examples"] + sft_card["data"]["longer_than_the_context"] == 48
    assert not (chain / "base" / "checkpoint.safetensors").exists()
    assert len(dpo_card["history"]["loss"]) == 2 and dpo_card["history"]["loss"][0] == pytest.approx(0.693147, abs=1e-5)
    assert not torch.equal(dpo.head.weight, sft.head.weight)                 # DPO moved the policy


def test_an_interrupted_stage_resumes_to_the_weights_of_an_uninterrupted_run(chain, tmp_path):
    stopped = pipeline.pretrain(tmp_path / "a", chain / "tok", until_step=2, **TINY)
    assert stopped["status"] == "stopped" and stopped["step"] == 2 and not (tmp_path / "a" / "card.json").exists()
    assert (tmp_path / "a" / "checkpoint.safetensors").is_file()
    resumed = pipeline.pretrain(tmp_path / "a", chain / "tok", **TINY)
    whole = json.loads((chain / "base" / "card.json").read_text())
    assert resumed["sha256"] == whole["sha256"]                              # bit for bit the same weights
    assert resumed["history"] == whole["history"]
    again = pipeline.pretrain(tmp_path / "a", chain / "tok", **TINY)         # a finished stage is not rerun
    assert again == resumed
    with pytest.raises(ArgumentError, match="other settings"):
        pipeline.pretrain(tmp_path / "a", chain / "tok", **{**TINY, "steps": 7})


def test_bad_stage_inputs_are_refused_by_name(chain, tmp_path):
    with pytest.raises(ArgumentError, match="tokenizer_dir: .* no finished stage"):
        pipeline.pretrain(tmp_path / "x", tmp_path / "nothing")
    with pytest.raises(ArgumentError, match="base_dir: .* 'tokenizer' stage; expected pretrain"):
        pipeline.sft(tmp_path / "x", chain / "tok")
    with pytest.raises(ArgumentError, match="sft_dir: .* 'pretrain' stage; expected sft"):
        pipeline.prefer(tmp_path / "x", chain / "base")
    with pytest.raises(ArgumentError, match="n_embd must be a multiple"):
        pipeline.pretrain(tmp_path / "x", chain / "tok", **{**TINY, "n_embd": 33})
    with pytest.raises(ArgumentError, match="vocab_size"):
        pipeline.tokenizer(tmp_path / "x", vocab_size=10)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("card.json", "tokenizer.json", "model.safetensors"):
        (broken / f).write_bytes((chain / "base" / f).read_bytes())
    data = bytearray((broken / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (broken / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArgumentError, match="do not match the sha256"):
        pipeline.load(broken)


def test_the_chat_session_answers_with_the_tool_and_obeys_its_commands(chain):
    said = []
    conversation = pipeline.chat_session(chain / "sft", write=said.append, max_new_tokens=6, input_lines=[
        "What is 2 + 3?", "/temperature x", "/temperature 0.8", "/tool maybe", "/tool off", "", "hello",
        "/system Be brief.", "hi <|im_end|>", "hi", "/quit", "never read"])
    assert said[0].startswith("chatting with the sft model")
    assert "(usage: /temperature T, with T >= 0)" in said and "(temperature 0.8)" in said
    assert "(usage: /tool on or /tool off)" in said and "(calculator off)" in said
    assert "(a message may not contain the model's special tokens)" in said
    assert sum(s.startswith("assistant: ") for s in said) == 3
    assert conversation[0] == {"role": "system", "content": "Be brief."} and conversation[1]["content"] == "hi"
    with pytest.raises(ArgumentError, match="chat needs an sft or prefer stage"):
        pipeline.chat_session(chain / "base", input_lines=[])


def test_the_report_card_measures_what_each_stage_can_be_asked(chain):
    card = report.report_card([chain / "base", chain / "sft", chain / "dpo"], n=2, n_chars=2000)
    base, sft, dpo = card["stages"]
    assert [r["stage"] for r in card["stages"]] == ["pretrain", "sft", "prefer"]
    assert base["order_slots"] is None and base["arithmetic_tool"] is None and base["kl"] is None
    assert all(0 <= r["ece"] <= 1 and r["bits_per_byte"] > 0 for r in card["stages"])
    assert sft["kl"] is None and dpo["kl"] is not None and 0 <= dpo["hallucination"] <= 1
    text = report.format_report(card)
    assert text.splitlines()[0].split()[:3] == ["stage", "bits/byte", "instructions"] and len(text.splitlines()) == 5
    assert report.report_card([chain / "dpo"], n=1, n_chars=1000)["stages"][0]["kl"] is None   # no reference given
    with pytest.raises(ArgumentError, match="tokenizer stage"):
        report.report_card([chain / "tok"])


def test_every_subcommand_runs_from_the_command_line(chain, tmp_path, capsys):
    t, b, s, d = (str(tmp_path / k) for k in ("tok", "base", "sft", "dpo"))
    assert main(["tokenizer", t, "--vocab-size", "300", "--text-chars", "200000"]) == 0
    tiny = ["--steps", "6", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "64", "--batch-size", "4"]
    assert main(["pretrain", b, "--tokenizer", t, *tiny, "--until-step", "4"]) == 0
    assert "stopped at step 4 of 6" in capsys.readouterr().out
    assert main(["pretrain", b, "--tokenizer", t, *tiny]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((tmp_path / "base" / "card.json").read_text())["sha256"] == \
        json.loads((chain / "base" / "card.json").read_text())["sha256"]     # the CLI is the same pipeline
    assert main(["sft", s, "--base", b, "--steps", "2", "--batch-size", "4", "--n-arithmetic", "8", "--n-orders", "8",
                 "--n-instructions", "8", "--n-facts", "8"]) == 0
    assert main(["prefer", d, "--sft", s, "--n-pairs", "4", "--batch-size", "4"]) == 0
    assert main(["eval", b, s, d, "--n", "1", "--n-chars", "1000", "--out", str(tmp_path / "r.json")]) == 0
    assert [r["stage"] for r in json.loads((tmp_path / "r.json").read_text())["stages"]] == ["pretrain", "sft", "prefer"]


@pytest.mark.parametrize("command", ["tokenizer", "pretrain", "sft", "prefer", "chat", "eval", "doctor", "docs", "progress"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: python -m llmcourse " + command in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "OUT", "--tokenizer", "TOK", "--steps", "-1"], "--steps must be an integer >= 1"),
    (["pretrain", "OUT", "--tokenizer", "NOWHERE"], "--tokenizer: NOWHERE holds no finished stage"),
    (["sft", "OUT", "--base", "TOK"], "--base: TOK holds a 'tokenizer' stage"),
    (["prefer", "OUT", "--sft", "BASE", "--beta", "0"], "--sft: BASE holds a 'pretrain' stage"),
    (["chat", "no-such-model"], "MODEL must be a stage folder"),
    (["eval", "TOK"], "is a tokenizer stage"),
    (["pretrain", "OUT", "--tokenizer", "TOK", "--steps", "many"], "argument --steps: invalid int value"),
    (["train"], "invalid choice"),
])
def test_bad_arguments_exit_with_status_2_and_say_which(chain, argv, message, capsys):
    paths = {"TOK": str(chain / "tok"), "BASE": str(chain / "base"), "OUT": str(chain / "new"), "NOWHERE": "NOWHERE"}
    with pytest.raises(SystemExit) as exit_:
        main([paths.get(a, a) for a in argv])
    assert exit_.value.code == 2
    assert message.replace("TOK", paths["TOK"]).replace("BASE", paths["BASE"]) in capsys.readouterr().err


def test_chat_through_standard_input(chain):
    done = subprocess.run([sys.executable, "-m", "llmcourse", "chat", str(chain / "sft"), "--max-new-tokens", "4"],
                          input="What is 2 + 3?\n/tool off\nhello\n/quit\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("chatting with the sft model") and "(calculator off)" in lines
    assert sum(line.startswith("assistant: ") for line in lines) == 2


def test_the_zoo_capstone_recipe_is_the_command_lines_defaults():
    """README and notebook 14 say the plain commands rebuild the zoo's capstone model: they must agree."""
    import inspect
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import build_zoo
    finally:
        sys.path.pop(0)
    recipe = build_zoo.ZOO["bpe-capstone-shakespeare"]["stages"]
    parser = __import__("llmcourse.__main__", fromlist=["_parser"])._parser()
    for stage, fn in (("tokenizer", pipeline.tokenizer), ("pretrain", pipeline.pretrain), ("sft", pipeline.sft),
                      ("prefer", pipeline.prefer)):
        defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()}
        assert {k: defaults[k] for k in recipe[stage]} == recipe[stage], stage
        required = {"pretrain": ["--tokenizer", "T"], "sft": ["--base", "B"], "prefer": ["--sft", "S"]}.get(stage, [])
        cli = vars(parser.parse_args([stage, "OUT", *required]))
        assert {k: cli[k] for k in recipe[stage] if k in cli} == {k: v for k, v in recipe[stage].items() if k in cli}, stage
