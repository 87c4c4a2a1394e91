"""The stored bodies of standings and fold states, written by orjson, read back as what they
hold and say what the bodies json wrote (every registry before them) said: for histories of
every pack, and for the values json and orjson write differently (small floats, non-ASCII)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_incremental import PACKS, POLICIES, scenarios

from socialcredit.ledger.entries import canonical_json
from socialcredit.scoring import incremental
from socialcredit.scoring.compact import CompactStanding, ListSpellState, MeasureState, compact
from socialcredit.scoring.fold import Reason, fold


def _same_text_as_json(body: str, value) -> None:
    """`body` says what json's text of `value` says, and reads back through json the same."""
    assert json.loads(body) == json.loads(canonical_json(value))


@settings(max_examples=150, deadline=None)
@given(pack=st.sampled_from(PACKS), data=st.data())
def test_a_stored_standing_and_state_read_back_as_written_and_as_json_wrote_them(pack, data):
    policy = POLICIES[pack]
    batches, ats = data.draw(scenarios(policy))
    history = [entry for batch in batches for entry in batch]
    standing = compact(fold(policy, history, ats[-1], None, "s"))
    body = standing.to_json()
    _same_text_as_json(body, standing.stored_form())
    assert CompactStanding.from_json(body, standing.cacheable) == standing
    assert CompactStanding.from_json(canonical_json(standing.stored_form()), standing.cacheable) == standing
    if incremental.supports(policy):
        state = incremental.build(policy, history)
        body = state.to_json()
        _same_text_as_json(body, state.stored_form())
        as_json_wrote_it = json.dumps(state.stored_form(), separators=(",", ":"))
        for text in (body, as_json_wrote_it):
            again = incremental.FoldState.from_json(text)
            assert again.stored_form() == state.stored_form()
            assert again.to_json() == body


def test_values_json_and_orjson_write_differently_read_back_the_same():
    reason = Reason("rule", "règle-étrangère", 7, 1e-05, 1_700_000_000_000_000, None, "cas «A»", effect=-1e-06)
    standing = CompactStanding(
        score=np.float64(2.5e-07), tier="AAA", dimensions=(1e-05, 1e22),
        lists=(ListSpellState("liste", "c\u2028d", 3, 1_700_000_000_000_000, None),),
        measures={"m": MeasureState(None, (reason,))}, reasons=(reason,), policy_digest="d" * 64,
        valid_from_us=1_700_000_000_000_000, valid_until_us=None)
    body = standing.to_json()
    assert body != canonical_json(standing.stored_form())  # the two write 1e-05 differently
    _same_text_as_json(body, standing.stored_form())
    assert CompactStanding.from_json(body) == standing
    assert list(json.loads(body)) == sorted(json.loads(body))  # keys sorted, as before
    assert " " not in body.replace("cas «A»", "")
