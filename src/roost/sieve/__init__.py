"""Sieve (RFC 5228 and extensions): parse and check a script once, then run it per message.

Pure: no I/O, no store, no clock.  The delivery code calls::

    script = compile_script(source)            # at upload; SieveSyntaxError has line/column
    stored = script.to_json()                  # kept with the script
    script = CompiledScript.from_json(stored)  # CompiledVersionError -> compile again
    result = run(script, ParsedMessage(data), Envelope(mail_from, rcpt_to), host)

and then carries out ``result.actions`` on ``apply_header_edits(data, result.header_edits)``.
"""

from roost.sieve.actions import (
    Action,
    AddHeader,
    DeleteHeader,
    Discard,
    FileInto,
    HeaderEdit,
    Keep,
    Redirect,
    Reject,
    Result,
    SieveRuntimeError,
    TrackDuplicate,
    Vacation,
)
from roost.sieve.compiled import FORMAT_VERSION, CompiledScript, CompiledVersionError
from roost.sieve.describe import describe
from roost.sieve.edits import apply_header_edits
from roost.sieve.host import Host, Limits, ScoreSource
from roost.sieve.interpreter import run
from roost.sieve.lexer import SieveSyntaxError
from roost.sieve.message import BodyPart, Envelope, MessageView, ParsedMessage
from roost.sieve.spec import EXTENSIONS
from roost.sieve.validate import compile_script

__all__ = [
    "EXTENSIONS",
    "FORMAT_VERSION",
    "Action",
    "AddHeader",
    "BodyPart",
    "CompiledScript",
    "CompiledVersionError",
    "DeleteHeader",
    "Discard",
    "Envelope",
    "FileInto",
    "HeaderEdit",
    "Host",
    "Keep",
    "Limits",
    "MessageView",
    "ParsedMessage",
    "Redirect",
    "Reject",
    "Result",
    "ScoreSource",
    "SieveRuntimeError",
    "SieveSyntaxError",
    "TrackDuplicate",
    "Vacation",
    "apply_header_edits",
    "compile_script",
    "describe",
    "run",
]
