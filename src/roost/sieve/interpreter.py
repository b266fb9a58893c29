"""Run a compiled script on one message: ``run(script, message, envelope, host) -> Result``.

Pure: the interpreter asks the host questions (``Host``) and returns actions; it carries
none out.  Any runtime error — a conflict between actions, a limit reached, an include that
is missing — discards everything the script asked for and returns ``status="error"`` with
a single implicit ``Keep`` (RFC 5228 §2.10.6): mail is never lost because of a script.
"""

from __future__ import annotations

from typing import Literal

from roost.sieve.actions import (
    AddHeader,
    DeleteHeader,
    Discard,
    FileInto,
    Keep,
    Redirect,
    Reject,
    Result,
    ResultBuilder,
    SieveRuntimeError,
)
from roost.sieve.compiled import CompiledScript, Node
from roost.sieve.conditions import evaluate, flag_set
from roost.sieve.host import Host, Limits
from roost.sieve.matching import fold, quote_wildcards
from roost.sieve.message import Envelope, MessageView
from roost.sieve.state import FLAGS_VARIABLE, Frame, State
from roost.sieve.vacation import decide

# RFC 5293 §7: fields a script must not remove (tracing and loop prevention rely on them).
PROTECTED_FIELDS = frozenset({"received", "auto-submitted"})


class _Stop(Exception):
    pass


class _Return(Exception):
    pass


def run(
    script: CompiledScript,
    message: MessageView,
    envelope: Envelope,
    host: Host,
    limits: Limits | None = None,
) -> Result:
    """The actions ``script`` takes for ``message``; errors yield an implicit keep."""
    limits = limits or Limits()
    state = State(
        message, envelope, host, limits, ResultBuilder(limits.max_actions, limits.max_redirects)
    )
    interpreter = _Interpreter(state)
    try:
        try:
            interpreter.block(script.commands, Frame(script))
        except _Stop:
            pass
        except _Return:
            pass
        builder = state.builder
        actions = list(builder.actions)
        if builder.implicit_keep:
            actions.append(Keep(tuple(flag_set(state.flags.get(FLAGS_VARIABLE, ""))), True))
        return Result("ok", actions, list(state.edits), None, builder.implicit_keep, state.warnings)
    except SieveRuntimeError as error:
        return Result("error", [Keep((), True)], [], str(error), True, state.warnings)
    except RecursionError:
        return Result("error", [Keep((), True)], [], "script nested too deeply", True)
    except Exception as error:
        # A bug in the interpreter must not lose the mail either: keep it, and the host logs
        # the reason (naming the exception) as for any failed run.
        reason = f"internal error: {type(error).__name__}: {error}"
        return Result("error", [Keep((), True)], [], reason, True, state.warnings)


class _Interpreter:
    def __init__(self, state: State) -> None:
        self.state = state
        self.include_stack: list[tuple[str, str]] = []
        self.included_once: set[tuple[str, str]] = set()

    def block(self, commands: tuple[Node, ...], frame: Frame) -> None:
        branch_taken = False
        for node in commands:
            name = node.name
            if name == "if":
                branch_taken = self.condition(node, frame)
            elif name == "elsif":
                if not branch_taken:
                    branch_taken = self.condition(node, frame)
            elif name == "else":
                if not branch_taken:
                    assert node.block is not None
                    self.block(node.block, frame)
            else:
                self.state.tick(node)
                _COMMANDS[name](self, node, frame)

    def condition(self, node: Node, frame: Frame) -> bool:
        self.state.tick(node)
        if not evaluate(self.state, node.tests[0], frame):
            return False
        assert node.block is not None
        self.block(node.block, frame)
        return True

    # Commands ------------------------------------------------------------------------------

    def stop(self, node: Node, frame: Frame) -> None:
        raise _Stop

    def keep(self, node: Node, frame: Frame) -> None:
        self.state.builder.add(Keep(self.flags_for(node, frame)), node.line)

    def discard(self, node: Node, frame: Frame) -> None:
        self.state.builder.add(Discard(), node.line)

    def fileinto(self, node: Node, frame: Frame) -> None:
        mailbox = self.state.expand(str(node.args[0]), frame)
        if not mailbox:
            raise SieveRuntimeError("fileinto an empty mailbox name", node.line)
        action = FileInto(
            mailbox,
            self.flags_for(node, frame),
            bool(node.tags.get("copy")),
            bool(node.tags.get("create")),
        )
        self.state.builder.add(action, node.line)

    def redirect(self, node: Node, frame: Frame) -> None:
        address = self.state.expand(str(node.args[0]), frame).strip()
        local, at, domain = address.rpartition("@")
        if not (at and local and domain) or any(char in address for char in " <>,\r\n"):
            raise SieveRuntimeError(f"invalid redirect address {address!r}", node.line)
        if self.state.host.redirect_loops(address):
            # Sending it on would loop: drop this redirect only, the mail is still kept.
            self.state.warnings.append(f"redirect to {address} skipped: mail loop")
            return
        self.state.builder.add(Redirect(address, bool(node.tags.get("copy"))), node.line)

    def reject(self, node: Node, frame: Frame) -> None:
        reason = self.state.expand(str(node.args[0]), frame)
        self.state.builder.add(Reject(reason, node.name == "ereject"), node.line)

    def vacation(self, node: Node, frame: Frame) -> None:
        reply = decide(self.state, node, frame)
        if reply is not None:
            self.state.builder.add(reply, node.line)

    def flags_for(self, node: Node, frame: Frame) -> tuple[str, ...]:
        """RFC 5232 §5: ``:flags`` if given, else the internal variable's current flags."""
        given = node.tags.get("flags")
        if isinstance(given, tuple):
            text = " ".join(self.state.expand_all(given, frame))
        elif "imap4flags" in frame.script.requires:
            text = self.state.flags.get(FLAGS_VARIABLE, "")
        else:
            return ()
        return tuple(flag_set(text))

    def change_flags(self, node: Node, frame: Frame) -> None:
        variable, flags = node.args
        assert isinstance(flags, tuple)
        given = flag_set(" ".join(self.state.expand_all(flags, frame)))
        if isinstance(variable, str):
            name = self.state.expand(variable, frame)
            current = flag_set(self.state.lookup(name, frame))
        else:
            name = None
            current = flag_set(self.state.flags.get(FLAGS_VARIABLE, ""))
        if node.name == "setflag":
            result = given
        elif node.name == "addflag":
            result = flag_set(" ".join(current + given))
        else:
            removed = {fold(flag) for flag in given}
            result = [flag for flag in current if fold(flag) not in removed]
        text = " ".join(result)
        if name is None:
            self.state.flags[FLAGS_VARIABLE] = text
        else:
            self.state.assign(name, text, frame, node.line)

    def set(self, node: Node, frame: Frame) -> None:
        name, value = node.args
        assert isinstance(name, str) and isinstance(value, str)
        text = self.state.expand(value, frame)
        tags = node.tags
        # RFC 5229 §4.1: modifiers apply from the highest precedence down.
        if tags.get("mod_lower"):
            text = text.lower()
        if tags.get("mod_upper"):
            text = text.upper()
        if tags.get("mod_lowerfirst") and text:
            text = text[0].lower() + text[1:]
        if tags.get("mod_upperfirst") and text:
            text = text[0].upper() + text[1:]
        if tags.get("mod_quotewildcard"):
            text = quote_wildcards(text)
        if tags.get("mod_length"):
            text = str(len(text))
        self.state.assign(name, text, frame, node.line)

    def global_(self, node: Node, frame: Frame) -> None:
        names = node.args[0]
        assert isinstance(names, tuple)
        frame.global_names.update(name.lower() for name in names)

    def return_(self, node: Node, frame: Frame) -> None:
        raise _Return

    def include(self, node: Node, frame: Frame) -> None:
        name = self.state.expand(str(node.args[0]), frame)
        location: Literal["personal", "global"] = (
            "global" if node.tags.get("location") == "global" else "personal"
        )
        key = (location, name)
        if node.tags.get("once") and key in self.included_once:
            return
        if key in self.include_stack:
            raise SieveRuntimeError(f"include of {name!r} is recursive", node.line)
        if len(self.include_stack) >= self.state.limits.max_include_depth:
            raise SieveRuntimeError("includes nested too deeply", node.line)
        script = self.state.host.load_script(name, location)
        if script is None:
            if node.tags.get("optional"):
                return
            raise SieveRuntimeError(f"included script {name!r} not found", node.line)
        self.included_once.add(key)
        self.include_stack.append(key)
        try:
            self.block(script.commands, Frame(script))
        except _Return:
            pass
        finally:
            self.include_stack.pop()

    def addheader(self, node: Node, frame: Frame) -> None:
        name = self.state.expand(str(node.args[0]), frame)
        value = self.state.expand(str(node.args[1]), frame)
        if not name or any(ord(char) < 33 or ord(char) > 126 or char == ":" for char in name):
            raise SieveRuntimeError(f"invalid header field name {name!r}", node.line)
        # RFC 5293 §4: the value is unfolded text; line breaks would forge header fields.
        value = " ".join(value.split())
        last = bool(node.tags.get("last"))
        fields = self.state.edit_fields()
        if last:
            fields.append((name, value))
        else:
            fields.insert(0, (name, value))
        self.state.edits.append(AddHeader(name, value, last))

    def deleteheader(self, node: Node, frame: Frame) -> None:
        name = self.state.expand(str(node.args[0]), frame)
        key = name.lower()
        if key in PROTECTED_FIELDS:
            self.state.warnings.append(f"deleteheader {name}: protected field left alone")
            return
        occurrences = self.state.headers(name)
        chosen = list(range(len(occurrences)))
        index = node.tags.get("index")
        if isinstance(index, int):
            position = len(occurrences) - index if node.tags.get("last") else index - 1
            chosen = [position] if 0 <= position < len(occurrences) else []
        patterns = node.args[1]
        if isinstance(patterns, tuple):
            chosen = [
                position
                for position in chosen
                if self.state.match(node, [occurrences[position]], patterns, frame)
            ]
        if not chosen:
            return
        fields = self.state.edit_fields()
        positions = [i for i, (field, _) in enumerate(fields) if field.lower() == key]
        for occurrence in sorted(chosen, reverse=True):
            del fields[positions[occurrence]]
            self.state.edits.append(DeleteHeader(name, occurrence))


_COMMANDS = {
    "stop": _Interpreter.stop,
    "keep": _Interpreter.keep,
    "discard": _Interpreter.discard,
    "redirect": _Interpreter.redirect,
    "fileinto": _Interpreter.fileinto,
    "reject": _Interpreter.reject,
    "ereject": _Interpreter.reject,
    "vacation": _Interpreter.vacation,
    "setflag": _Interpreter.change_flags,
    "addflag": _Interpreter.change_flags,
    "removeflag": _Interpreter.change_flags,
    "set": _Interpreter.set,
    "global": _Interpreter.global_,
    "return": _Interpreter.return_,
    "include": _Interpreter.include,
    "addheader": _Interpreter.addheader,
    "deleteheader": _Interpreter.deleteheader,
}
