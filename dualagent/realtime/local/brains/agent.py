"""A scripted agent under test driven by its agent spec (registered as ``local-agent``).

It knows its domain only from the session: the declared tools (names, descriptions, JSON-schema
parameters) and the profile section of its instructions. Policy, as a careful human agent would
follow it: greet; work out which tool the caller's request needs; collect that tool's required
arguments (from earlier tool results when a field has the argument's name, by calling the tool
that provides them first, else by asking the caller); read back what it will do and wait for a
yes before a tool that changes something; call it and read the result; ask whether there is
anything else; say goodbye.

Profile keys read (all optional; ``agents.agent_instructions`` writes the first five from the
spec, the rest come from the spec's ``profile:``):

- ``seed``, ``organisation``, ``agent_name``, ``greeting``;
- ``tools: {name: {say: template}}``: how to read a tool's result (``{field}``, ``{a.b}``,
  ``{items[0].date}``; values said in words); a generic sentence otherwise;
- ``intents: {tool: [phrases]}``: phrases that mean the caller wants that tool;
- ``ask: {argument: question}``: the question for an argument (default: from its
  description); an optional argument named here is asked for too;
- ``confirm: [tool, ...]``: tools read back for a yes first, besides those whose names start
  with book/cancel/reschedule/order/update/create/delete/change/submit/send/refill/transfer;
- ``sources: {argument: tool}``: the tool whose result gives an argument (default: a tool
  named in the argument's description, or whose description names the argument);
- ``today: YYYY-MM-DD``: the year of a date said without one.
"""

from __future__ import annotations

import re
from typing import Any

from dualagent.realtime.local.brains import arguments as args_
from dualagent.realtime.local.brains import language as lang
from dualagent.realtime.local.brains.arguments import ToolInfo
from dualagent.realtime.local.brains.base import BrainInput, ConversationReader, Reply
from dualagent.realtime.local.brains.requests import (
    CHANGING_VERBS,
    DONE,
    HUMAN,
    MOVING_VERBS,
    REPEAT,
    failed,
    fill_arguments,
    generic_reading,
    is_transfer,
    just_go_on,
    option_records,
    pick_option,
    remember,
    score_request,
    year_of,
)

_NOT_STATEMENTS = ("Of course. ", "Sure. ", "Sure, one moment.", "Sorry, ", "I'm sorry, I didn't",
                   "Hello?")  # fmt: skip


class SpecAgentBrain:
    """Deterministic agent under test from its spec; one instance per session."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.org = str(profile.get("organisation") or "us")
        self.agent_name = str(profile.get("agent_name") or "")
        here = f", this is {self.agent_name}" if self.agent_name else ""
        self.greeting = str(
            profile.get("greeting")
            or f"Thank you for calling {self.org}{here}. How can I help you today?"
        )
        self.says = {
            name: cfg.get("say")
            for name, cfg in (profile.get("tools") or {}).items()
            if isinstance(cfg, dict) and cfg.get("say")
        }
        self.intents: dict[str, list[str]] = profile.get("intents") or {}
        self.wording: dict[str, str] = profile.get("ask") or {}
        self.confirm_tools = set(profile.get("confirm") or [])
        self.sources: dict[str, str] = profile.get("sources") or {}
        self.year = year_of(profile.get("today"))
        self.reader = ConversationReader()
        self.tools: dict[str, ToolInfo] = {}
        self.declared: list[str] = []
        self.values: dict[str, Any] = {}  # argument name -> value (caller or results)
        self.from_caller: set[str] = set()
        self.chosen: dict[str, dict[str, Any]] = {}  # argument -> the option record it came from
        self.goal: str | None = None
        self.queue: list[str] = []  # further requests, in the order they were made
        self.stage = "greeting"
        self.asking: list[str] = []
        self.options: list[dict[str, Any]] = []
        self.option_arg = ""
        self.pending: tuple[str, dict[str, Any]] | None = None  # awaiting the caller's yes
        self.failures: dict[str, int] = {}
        self.misses: dict[str, int] = {}  # argument -> unclear answers
        self.corrections = 0
        self.unclear = 0
        self.sources_called: set[str] = set()  # steps already taken for the current request
        self.last_said = ""
        self.last_statement = ""
        self._last_calls: list[tuple[str, dict[str, Any]]] = []
        self._calls_expected = 0

    # ------------------------------------------------------------------ entry point

    def respond(self, given: BrainInput) -> Reply:
        if given.tool_specs or given.tools:
            tools = args_.tools_from_specs(given.tool_specs, given.tools)
            self.tools = {t.name: t for t in tools}
            self.declared = [t.name for t in tools]
        fresh = self.reader.new_entries(given.conversation)
        results = self.reader.tool_results(fresh)
        calls_made = sum(1 for e in given.conversation if e.role == "assistant" and e.call_id)
        missing = self._calls_expected - calls_made if not results else 0
        heard = self.reader.heard(fresh)
        if results:
            reply = self._after_tools(results)
        elif missing > 0 and self._last_calls:
            # The caller cut in before our tool calls went out: make them now, briefly.
            reply = (
                self._human(heard)
                if lang.has_any(heard, HUMAN)
                else Reply("Sure, one moment.", self._last_calls[-missing:])
            )
        else:
            reply = self._after_speech(heard)
        if reply.text:
            self.last_said = reply.text
            if not reply.text.startswith(_NOT_STATEMENTS):
                self.last_statement = reply.text
        reply.tool_calls = [
            (n, a) for n, a in reply.tool_calls if not given.tools or n in given.tools
        ]
        self._last_calls = list(reply.tool_calls)
        self._calls_expected = calls_made + len(reply.tool_calls)
        return reply

    # ------------------------------------------------------------------ speech

    def _after_speech(self, heard: str) -> Reply:
        if self.stage == "greeting":
            self.stage = "listening"
            if not heard:
                return Reply(self.greeting)
            here = f" this is {self.agent_name} at {self.org}." if self.agent_name else ""
            return self._listen(heard, f"Hello,{here} " if here else "Hello. ")
        if not heard:
            return Reply("Hello? Are you still there?")
        if lang.has_any(heard, REPEAT) and self.last_statement:
            return Reply(f"Of course. {self.last_statement}")
        if lang.has_any(heard, HUMAN):
            return self._human(heard)
        if just_go_on(heard) and self.last_statement and self.stage != "confirming":
            return Reply(f"Sure. {self.last_statement}")
        handler = {
            "asking": self._answer,
            "choosing": self._choose,
            "confirming": self._confirm,
            "anything_else": self._anything_else_answer,
        }.get(self.stage)
        if self.stage == "closing":
            return Reply("You're welcome. Goodbye.")
        return handler(heard) if handler else self._listen(heard)

    def _listen(self, heard: str, prefix: str = "") -> Reply:
        ranked = self._ranked(heard)
        if not ranked:
            return self._unclear(prefix)
        self.unclear = 0
        self.goal = ranked[0][0]
        # Another request named by its action ("cancel ... and book ...") waits its turn; a
        # tool the first one needs anyway is not a request of its own.
        chain = self._chain(self.goal)
        self.queue += [
            name
            for name, score in ranked[1:]
            if score >= 4.0
            and name not in chain
            and name not in self.queue
            and self._changes(self.tools[name])
        ]
        self._note(heard)
        return self._next(prefix + "I can help with that. ")

    def _ranked(self, heard: str) -> list[tuple[str, float]]:
        """The tools the caller asks for in ``heard`` with their scores, best first."""
        scored = []
        for name in self.declared:
            if name == "end_call" or is_transfer(self.tools[name]):
                continue
            score = score_request(self.tools[name], heard, self.intents.get(name, []))
            if score >= 2.0:
                scored.append((-score, self.declared.index(name), name))
        return [(name, -score) for score, _, name in sorted(scored)]

    def _chain(self, name: str) -> set[str]:
        """A tool and the tools giving its arguments' values, recursively."""
        chain: set[str] = set()
        todo = [name]
        while todo:
            tool = self.tools.get(todo.pop())
            if tool is None or tool.name in chain:
                continue
            chain.add(tool.name)
            todo += [s for a in tool.properties if (s := self._source(a, tool))]
        return chain

    def _unclear(self, prefix: str = "") -> Reply:
        self.unclear += 1
        if self.unclear >= 4:
            return self._give_up("I'm sorry, I'm having trouble understanding.")
        if self.unclear >= 2:
            tools = self._goal_tools()[:4]
            things = [self._what(t) for t in tools]
            nouns = {t.noun for t in tools}
            if len(tools) > 1 and len(nouns) == 1 and all(nouns):
                noun = nouns.pop()  # "book, reschedule or cancel an appointment"
                things = [t.verb for t in tools]
                things[-1] += f" {'an' if noun[0] in 'aeiou' else 'a'} {noun}"
            if things:
                offer = ", ".join(things[:-1]) + (" or " if len(things) > 1 else "") + things[-1]
                return Reply(
                    prefix
                    + f"Sorry, I didn't catch that. I can help you {offer}. What would you like to do?"
                )
        return Reply(
            prefix + "I'm sorry, I didn't quite catch that. Could you tell me again how I can help?"
        )

    def _goal_tools(self) -> list[ToolInfo]:
        return [
            t
            for t in self.tools.values()
            if t.name != "end_call" and not is_transfer(t) and self._changes(t)
        ] or [t for t in self.tools.values() if t.name != "end_call" and not is_transfer(t)]

    # ------------------------------------------------------------------ planning

    def _next(self, prefix: str = "") -> Reply:
        """The next step towards the current request: ask, offer, read back or call."""
        if self.goal is None:
            return self._wrap_up(prefix.strip() or "Okay.")
        step = self._plan(self.goal, set())
        if step is None:
            return self._drop(prefix + "I'm sorry, I can't do that over the phone.")
        kind, name, detail = step
        if kind == "ask":
            self.stage, self.asking = "asking", detail
            return Reply(prefix + self._question(detail))
        arguments: dict[str, Any] = detail
        tool = self.tools[name]
        if self._changes(tool) and self.pending != (name, arguments):
            self.stage, self.pending = "confirming", (name, arguments)
            return Reply(prefix + self._read_back(tool, arguments))
        self.stage, self.pending = "waiting", None
        lead = "One moment." if not prefix.strip() else prefix.strip() + " One moment."
        return Reply(lead, [(name, arguments)])

    def _plan(self, name: str, seen: set[str]) -> tuple[str, str, Any] | None:
        """("ask", tool, [arguments]) or ("call", tool, arguments) for the next step, or None
        when a needed value has no way to be had."""
        tool = self.tools.get(name)
        if tool is None or name in seen:
            return None
        seen = seen | {name}
        wanted = list(tool.required) + [
            a for a in tool.properties if a not in tool.required and a in self.wording
        ]
        for arg in wanted:
            if arg in self.values:
                continue
            source = self._source(arg, tool)
            if source and source not in seen:
                if source in self.sources_called:
                    return None  # it answered, without this value
                step = self._plan(source, seen)
                if step and step[:2] == ("call", source):
                    self.sources_called.add(source)
                return step
            missing = [a for a in wanted if a not in self.values and not self._source(a, tool)]
            ask = [arg] + [
                a
                for a in missing[1:2]
                if a != arg
                and args_.is_specific(a, tool.properties.get(a, {}))
                and args_.is_specific(arg, tool.properties.get(arg, {}))
                and a not in self.wording
                and arg not in self.wording
            ]
            return ("ask", name, ask)
        arguments = {
            a: self.values[a] for a in tool.properties if a in self.values and a in wanted
        } | {
            a: self.values[a]
            for a in tool.properties
            if a in self.values and a not in wanted and a in self.from_caller
        }
        return ("call", name, arguments)

    def _source(self, arg: str, tool: ToolInfo) -> str | None:
        """The tool whose result gives ``arg`` (profile ``sources``, a tool named in the
        argument's description, or one whose description names the argument)."""
        if arg in self.sources and self.sources[arg] in self.tools:
            return self.sources[arg]
        described = str(tool.properties.get(arg, {}).get("description", "")).lower()
        for other in self.tools.values():
            if other.name != tool.name and other.name.lower() in described:
                return other.name
        if "_" not in arg and not args_.is_id(arg):
            return None  # a plain word ("date") in a description is no promise to return it
        for other in self.tools.values():
            if (
                other.name != tool.name
                and arg not in other.properties
                and re.search(rf"\b{re.escape(arg)}\b", other.description)
                and not is_transfer(other)
            ):
                return other.name
        return None

    def _changes(self, tool: ToolInfo) -> bool:
        return tool.name in self.confirm_tools or tool.verb in CHANGING_VERBS

    def _question(self, names: list[str]) -> str:
        schemas = self._schemas()
        if len(names) == 1:
            return args_.ask_text(names[0], schemas.get(names[0], {}), self.wording.get(names[0]))
        phrases = [args_.ask_phrase(n, schemas.get(n, {})) for n in names]
        return f"Could you tell me {' and '.join(phrases)}?"

    def _schemas(self) -> dict[str, dict[str, Any]]:
        """Every argument's schema by name (the first tool declaring it)."""
        schemas: dict[str, dict[str, Any]] = {}
        for tool in self.tools.values():
            for name, schema in tool.properties.items():
                schemas.setdefault(name, schema)
        return schemas

    def _read_back(self, tool: ToolInfo, arguments: dict[str, Any]) -> str:
        details: list[str] = []
        records: list[dict[str, Any]] = []
        for name, value in arguments.items():
            record = self.chosen.get(name)
            if record is not None:  # an option the caller chose: its readable fields
                if not any(r is record for r in records):
                    records.append(record)
                    details.append(args_.record_summary(record))
                continue
            theirs = name in self.from_caller
            if not theirs and (args_.is_id(name) or any(name in r for r in self.chosen.values())):
                continue  # an id from a result, or a field already said with its option
            details.append(f"{args_.label(name)} {args_.say_value(value)}")
        if len(records) == 2 and tool.verb in MOVING_VERBS:  # the one it has, and the new one
            details[details.index(args_.record_summary(records[0]))] = (
                f"from {args_.record_summary(records[0])}"
            )
            details[details.index(args_.record_summary(records[1]))] = (
                f"to {args_.record_summary(records[1])}"
            )
        listed = ", ".join(d for d in details if d)
        return f"Let me read that back. I'll {self._what(tool)}{': ' + listed if listed else ''}. Is that right?"

    def _what(self, tool: ToolInfo) -> str:
        noun = tool.noun
        return f"{tool.verb} the {noun}" if noun else tool.verb

    # ------------------------------------------------------------------ the caller's answers

    def _note(
        self, heard: str, asked: tuple[str, ...] = (), *, overwrite: bool = False
    ) -> list[str]:
        """Take the values said in ``heard`` for the arguments the request needs (``asked``:
        just asked for, so a bare answer counts; ``overwrite``: a correction)."""
        schemas = self._schemas()
        wanted = self._wanted()
        got = []
        for name in wanted:
            if name in self.values and name not in asked and not overwrite:
                continue
            if overwrite and name in self.values and name not in self.from_caller:
                continue
            schema = schemas.get(name, {})
            if name not in asked and not self._unambiguous(name, heard, wanted, schemas):
                continue
            if name not in asked and len(args_.enum_mentions(heard, schema)) > 1:
                continue  # "move Tuesday to Thursday": which is which is asked, not guessed
            value = args_.parse_argument(
                name, schema, heard, asked=name in asked, default_year=self.year
            )
            if value is not None:
                self.values[name] = value
                self.from_caller.add(name)
                got.append(name)
        return got

    def _wanted(self) -> list[str]:
        """Arguments of the current request's tools (and of the tools giving their values)."""
        names: list[str] = []
        visited: set[str] = set()
        todo = [self.goal] if self.goal else []
        while todo:
            tool = self.tools.get(todo.pop(0))
            if tool is None or tool.name in visited:
                continue
            visited.add(tool.name)
            for arg in tool.properties:
                source = self._source(arg, tool)
                if source:
                    todo.append(source)
                if arg not in names:
                    names.append(arg)
        return names

    def _unambiguous(
        self, name: str, heard: str, wanted: list[str], schemas: dict[str, dict[str, Any]]
    ) -> bool:
        """A value said unasked belongs to ``name`` only if no other wanted argument of the
        same kind could take it, or ``heard`` says the argument's name."""
        if not args_.is_specific(name, schemas.get(name, {})):
            return False
        kind = args_.arg_kind(name, schemas.get(name, {}))
        rivals = [n for n in wanted if n != name and args_.arg_kind(n, schemas.get(n, {})) == kind]
        words = [w for w in args_.label(name).split() if w not in ("date", "name", "of", "the")]
        return not rivals or any(lang.has_any(heard, (w,)) for w in words)

    def _answer(self, heard: str) -> Reply:
        asked = tuple(self.asking)
        got = self._note(heard, asked)
        missing = [a for a in asked if a not in got]
        if not missing:
            self.misses.clear()
            return self._next("Thank you. ")
        name = missing[0]
        if not got:  # nothing usable in the answer
            self.misses[name] = self.misses.get(name, 0) + 1
            if self.misses[name] >= 3:
                return self._give_up(f"I'm sorry, I couldn't get your {args_.label(name)}.")
        schema = self._schemas().get(name, {})
        self.asking = missing
        if args_.arg_kind(name, schema) == "name" and len(heard.split()) <= 6:
            # "first and last name" is misheard on the line; "full name" is not
            return Reply("Thank you. Could you tell me your full name, please?")
        if lang.has_any(heard, ("don't know", "no idea", "don't remember", "can't remember")):
            return self._give_up(f"I'm sorry, I need your {args_.label(name)} to do that.")
        lead = "Thank you. " if got else "I'm sorry, I didn't get that. "
        choices = args_.enum_choices(schema)
        if not got and len(choices) > 4:  # asked again: say what the answers can be
            listed = ", ".join(args_.label(c) for c in choices[:-1])
            return Reply(f"{lead}{self._question([name])} You can say {listed} or {choices[-1]}.")
        return Reply(lead + self._question(missing))

    def _choose(self, heard: str) -> Reply:
        picked = pick_option(self.options, heard)
        if picked is None and len(self.options) == 1 and lang.is_yes(heard):
            picked = self.options[0]
        if picked is None:
            if lang.is_no(heard) or lang.has_any(heard, ("none of", "neither", "doesn't work")):
                return self._drop("I'm sorry, those are the only ones I have.")
            self.misses["option"] = self.misses.get("option", 0) + 1
            if self.misses["option"] >= 3:
                return self._give_up("I'm sorry, I couldn't tell which one you wanted.")
            return Reply("Sorry, which one would you like? " + self._offer_text())
        self.misses.pop("option", None)
        self._take(picked)
        return self._next("Great. ")

    def _take(self, record: dict[str, Any]) -> None:
        """The option chosen: its id for the argument, its other fields for later tools."""
        self.chosen[self.option_arg] = record
        for key, value in record.items():
            if not isinstance(value, dict | list):
                self.values.setdefault(key, value)
        self.values[self.option_arg] = record[self.option_arg]

    def _own(self, arg: str) -> str | None:
        """'appointment' when ``arg`` names one of the caller's own things the request is
        about (which appointment to cancel), not something on offer (a free slot)."""
        thing = args_.label(arg).split()[0]
        goal = self.tools.get(self.goal or "")
        return thing if goal is not None and thing in goal.noun.split() else None

    def _confirm(self, heard: str) -> Reply:
        if self.pending is None:
            return self._next()
        name, arguments = self.pending
        if lang.is_yes(heard) and not lang.is_no(heard):
            self.corrections = 0
            self.stage, self.pending = "waiting", None
            return Reply("Thank you. One moment.", [(name, arguments)])
        tool = self.tools[name]
        before = dict(self.values)
        got = self._note(heard, overwrite=True) or self._retold(heard, arguments)
        changed = [a for a in got if before.get(a) != self.values.get(a)]
        if changed or lang.is_no(heard) or lang.has_any(heard, ("wrong", "not right", "mistake")):
            self.corrections += 1
            if self.corrections >= 3:
                return self._give_up("I'm sorry, I can't seem to get this right.")
            if changed:
                return self._next("Thank you for correcting me. ")
            chosen = [a for a in arguments if a in self.chosen]
            if chosen and not any(lang.has_any(heard, (args_.label(a),)) for a in self.from_caller):
                arg = chosen[0]
                del self.chosen[arg]
                self.values.pop(arg, None)
                self.option_arg = arg
                self.stage = "choosing"
                return Reply("I'm sorry. " + self._offer_text())
            named = [
                a
                for a in arguments
                if a in self.from_caller and lang.has_any(heard, (args_.label(a),))
            ]
            redo = named or [a for a in arguments if a in self.from_caller][:1]
            if redo:
                for a in redo:
                    self.values.pop(a, None)
                self.stage, self.asking = "asking", redo
                return Reply("I'm sorry. " + self._question(redo))
            return Reply(f"I'm sorry. Shall I {self._what(tool)}? Yes or no?")
        self.misses["confirm"] = self.misses.get("confirm", 0) + 1
        if self.misses["confirm"] >= 3:
            return self._give_up("I'm sorry, I'm having trouble understanding.")
        return Reply(f"Sorry, should I go ahead and {self._what(tool)}? Yes or no?")

    def _retold(self, heard: str, arguments: dict[str, Any]) -> list[str]:
        """A free-text value said again in a correction: after its name ("the reason is ..."),
        or sharing words with what we had ("no, it's for a yearly check up")."""
        schemas = self._schemas()
        said = args_.canon(heard)
        for name in arguments:
            schema = schemas.get(name, {})
            if name not in self.from_caller or args_.arg_kind(name, schema) != "text":
                continue
            named = args_.canon(args_.label(name))
            if f" {named} " in f" {said} ":
                text = said.split(named, 1)[1].split()
                value = args_.parse_text(
                    " ".join(text[1:] if text[:1] in (["is"], ["this"], ["was"]) else text)
                )
            else:
                ours = {
                    w for w in args_.canon(str(self.values.get(name, ""))).split() if len(w) > 3
                }
                value = args_.parse_text(heard) if ours & set(said.split()) else None
            if value is not None and args_.valid(value, schema):
                self.values[name] = value
                return [name]
        return []

    def _anything_else_answer(self, heard: str) -> Reply:
        if self._ranked(heard):
            return self._listen(heard)
        if lang.has_any(heard, DONE) or lang.is_no(heard):
            return self._goodbye()
        if lang.has_any(heard, ("thank", "thanks", "great", "perfect", "okay")):
            return Reply("You're welcome. Is there anything else I can help you with?")
        self.unclear += 1
        if self.unclear >= 3:
            return self._goodbye()
        return Reply("Sorry, is there anything else I can help you with?")

    # ------------------------------------------------------------------ tool results

    def _after_tools(self, results: list[tuple[str, dict[str, Any]]]) -> Reply:
        name, output = results[-1]
        tool = self.tools.get(name) or ToolInfo(name)
        if name == "end_call" or is_transfer(tool):
            self.stage = "closing"
            return Reply("")
        if failed(output):
            return self._on_failure(tool, output)
        self.failures.pop(name, None)
        remember(self.values, output)
        said = args_.render(self.says[name], output) if name in self.says else None
        if name == self.goal:
            return self._wrap_up(said or generic_reading(tool, output, self._changes(tool)))
        # A step towards the request: did it give what the request needs?
        wanted = self._wanted()
        needed = [a for a in self._needs_from(name) if a in wanted and a not in self.values]
        if needed:
            records = option_records(output, needed[0])
            lead = said + " " if said else ""
            own = self._own(needed[0])
            if not records:
                if said and not own:  # the tool's own words say there is nothing
                    return self._drop(said)
                sorry = (
                    f"I don't see any {own}s for you."
                    if own
                    else "I couldn't find anything suitable."
                )
                return self._drop(f"{lead}I'm sorry, {sorry}")
            self.options, self.option_arg, self.stage = records[:3], needed[0], "choosing"
            if own and len(records) == 1:  # their only one: the read-back will name it
                self._take(records[0])
                return self._next(lead or "Thank you. ")
            text = self._offer_text()
            first = args_.record_summary(records[0]).split(",")[0]
            if said and first and args_.canon(first) in args_.canon(said):
                text = said if said.endswith("?") else said + " Which would you like?"
            elif said:
                text = f"{said} {text}"
            return Reply(text)
        return self._next(said + " " if said else "Thank you. ")

    def _needs_from(self, source: str) -> list[str]:
        names = []
        for tool in self.tools.values():
            for arg in tool.required:
                if self._source(arg, tool) == source and arg not in names:
                    names.append(arg)
        return names

    def _offer_text(self) -> str:
        summaries = [args_.record_summary(r) for r in self.options]
        listed = ", or ".join(summaries)
        # The caller's own things (which appointment to cancel) are asked about, not offered.
        thing = self._own(self.option_arg)
        if thing:
            if len(summaries) == 1:
                return f"I see your {thing}: {listed}. Is that the one?"
            return f"I see your {thing}s: {listed}. Which one do you mean?"
        if len(summaries) == 1:
            return f"I have {listed}. Would that work for you?"
        return f"I have {listed}. Which would you like?"

    def _on_failure(self, tool: ToolInfo, output: dict[str, Any]) -> Reply:
        self.failures[tool.name] = self.failures.get(tool.name, 0) + 1
        self.sources_called.discard(tool.name)  # a retry may call it again
        error = args_.say_text(str(output.get("error") or output.get("message") or "")).replace(
            "_", " "
        )
        sorry = f"I'm sorry, {error.rstrip('.')}." if error else "I'm sorry, that didn't work."
        picked = [a for a in tool.required if a in self.chosen]
        if self.failures[tool.name] < 2 and picked and self.goal:
            # The option went (a slot someone else took): look again and offer what is left.
            for a in picked:
                self.chosen.pop(a)
                self.values.pop(a, None)
                self.sources_called.discard(self._source(a, tool) or "")
            return self._next(f"{sorry} Let me look again. ")
        mine = [a for a in tool.required if a in self.from_caller]
        if self.failures[tool.name] < 2 and mine and self.goal:
            for a in mine:
                self.values.pop(a, None)
            self.stage, self.asking = "asking", mine[:2]
            return Reply(f"{sorry} Let's try that again. {self._question(mine[:2])}")
        if tool.name != self.goal and self._transfer_tool():
            return self._give_up(sorry)
        return self._drop(sorry)

    # ------------------------------------------------------------------ endings

    def _wrap_up(self, text: str) -> Reply:
        """The request is done (or dropped): the next queued one, or anything else?"""
        self._reset_request()
        if self.queue:
            self.goal = self.queue.pop(0)
            return self._next(text + " Now, ")
        self.stage = "anything_else"
        self.unclear = 0
        return Reply(f"{text} Is there anything else I can help you with?")

    def _drop(self, text: str) -> Reply:
        return self._wrap_up(text)

    def _reset_request(self) -> None:
        self.goal, self.pending, self.asking, self.options = None, None, [], []
        self.chosen.clear()
        self.misses.clear()
        self.sources_called.clear()
        self.corrections = 0
        # Values the caller gave stay (their name is still their name); results do not.
        self.values = {k: v for k, v in self.values.items() if k in self.from_caller}

    def _transfer_tool(self) -> ToolInfo | None:
        return next((t for t in self.tools.values() if is_transfer(t)), None)

    def _human(self, heard: str) -> Reply:
        tool = self._transfer_tool()
        if tool is None:
            return Reply(
                "I'm sorry, there is no one else I can put you through to. I'm happy to help you myself."
            )
        self.stage = "transferring"
        return Reply(
            "Of course. I'm transferring you to one of my colleagues now. Please hold.",
            [(tool.name, fill_arguments(tool, "caller asked for a human"))],
        )

    def _give_up(self, text: str) -> Reply:
        tool = self._transfer_tool()
        if tool is None:
            return self._drop(text)
        self.stage = "transferring"
        return Reply(
            f"{text} Let me transfer you to a colleague who can help.",
            [(tool.name, fill_arguments(tool, "could not complete the request"))],
        )

    def _goodbye(self) -> Reply:
        self.stage = "closing"
        calls = (
            [("end_call", fill_arguments(self.tools["end_call"], "the caller is done"))]
            if "end_call" in self.tools
            else []
        )
        return Reply(f"Thank you for calling {self.org}. Have a great day. Goodbye.", calls)
