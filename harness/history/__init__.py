"""Stormproof histories: every operation as an invoke and a completion.

A history is Jepsen's model: client calls and fault injections recorded as
``invoke`` ops followed by ``ok`` (took effect), ``fail`` (certainly no
effect) or ``info`` (unknown) completions, in real-time order. The recorder
writes it as JSON lines while the load runs (the load process's
``SpooledRecorder`` keeps raw facts and writes the same lines once the load
is over); checkers read it back.
"""

from stormproof.harness.history.classify import NO_EFFECT_STATUSES, classify
from stormproof.harness.history.history import History, HistoryError, Pair, outcome
from stormproof.harness.history.merge import merge_histories
from stormproof.harness.history.op import EMPTY, Op, OpType, freeze, op_from_dict, op_from_json, op_to_dict, op_to_json
from stormproof.harness.history.recorder import HistoryRecorder, HistoryWriteError
from stormproof.harness.history.spool import SpooledRecorder, finish_spool
from stormproof.harness.history.storage import HistoryFileError, load_history, read_ops, write_history

__all__ = [
    "EMPTY",
    "NO_EFFECT_STATUSES",
    "History",
    "HistoryError",
    "HistoryFileError",
    "HistoryRecorder",
    "HistoryWriteError",
    "Op",
    "OpType",
    "Pair",
    "SpooledRecorder",
    "classify",
    "finish_spool",
    "freeze",
    "load_history",
    "merge_histories",
    "op_from_dict",
    "op_from_json",
    "op_to_dict",
    "op_to_json",
    "outcome",
    "read_ops",
    "write_history",
]
