"""Pipeline stage 2, plan: a deterministic stream of generation tasks from the config and its seed.

Types follow the configured mix exactly (smooth weighted round-robin, not random draws); each type
cycles through its contexts x complexities, and each context's topics are used before any repeats.
Same config + seed -> same plan.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from .records import LEVELS, Example, Topic
from .schemas import schema_text
from .snapshot import positions, rng_from, rng_state

LEVEL_ORDER = LEVELS


@dataclass(frozen=True)
class Task:
    """One generation call: `len(topics)` candidates of one type and context.

    Per slot: the topic, the instruction style, and optionally a real community question to use as the
    instruction and a real decomp function to use as input. A ladder task asks for one topic at rising
    levels, each example building on the previous one.
    """

    index: int
    type: str
    context: str
    complexity: str
    topics: tuple[str, ...]
    instructions: tuple[str, ...]  # the instruction style chosen for each candidate
    levels: tuple[str, ...] = ()  # per-slot complexity (empty: `complexity` for every slot)
    questions: tuple[str, ...] = ()  # per-slot community question ("" for none)
    sources: tuple[dict, ...] = ()  # per-slot real function {function, file, line, end_line, commit, body}
    ladder: bool = False
    angles: tuple[str, ...] = ()  # per-slot angle of the topic ("" for none)

    @classmethod
    def from_stored(cls, index: int, type_name: str, context: str, complexity: str, topics: tuple[str, ...],
                    instructions: tuple[str, ...], extras: dict) -> Task:
        """The task as the store keeps it (`extras()` holds the optional per-slot fields)."""
        return cls(index, type_name, context, complexity, topics, instructions, levels=tuple(extras.get("levels") or ()),
                   questions=tuple(extras.get("questions") or ()), sources=tuple(extras.get("sources") or ()),
                   ladder=bool(extras.get("ladder")), angles=tuple(extras.get("angles") or ()))

    def level(self, slot: int) -> str:
        return self.levels[slot] if self.levels else self.complexity

    def question(self, slot: int) -> str:
        return self.questions[slot] if self.questions else ""

    def source(self, slot: int) -> dict | None:
        return self.sources[slot] if self.sources and self.sources[slot] else None

    def angle(self, slot: int) -> str:
        return self.angles[slot] if self.angles else ""

    def extras(self) -> dict:
        extras = {"levels": list(self.levels), "questions": list(self.questions), "sources": list(self.sources), "ladder": self.ladder}
        if self.angles:
            extras["angles"] = list(self.angles)
        return extras

    def cut(self, slots: int) -> Task:
        """The task asking for its first `slots` candidates only (the last call of a wave may ask for fewer).
        Ladders and community questions are never cut: a ladder's steps and a question chunk stay whole."""
        if slots >= self.count or self.ladder or self.questions:
            return self
        return replace(self, topics=self.topics[:slots], instructions=self.instructions[:slots], levels=self.levels[:slots],
                       sources=self.sources[:slots], angles=self.angles[:slots])

    @property
    def key(self) -> str:
        return f"task-{self.index:06d}"

    @property
    def count(self) -> int:
        return len(self.topics)


def type_quotas(mix: dict[str, float], num: int) -> dict[str, int]:
    """Accepted examples wanted per type: `num` split by the mix weights (largest remainders round up)."""
    total = sum(mix.values())
    exact = {name: num * weight / total for name, weight in mix.items()} if total > 0 else {}
    quotas = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - quotas[name]), name))
    for name in by_remainder[: num - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


def type_streams(project, *, examples_per_call: int | None = None) -> dict[str, TypeStream]:
    """One deterministic, infinite task stream per example type of the mix (take as many as the run needs).

    Each type has its own seeded generator (contexts x levels, topics, angles, styles, real functions), so what a
    type's stream holds does not depend on how far the other streams were taken: a run that takes more tasks of
    one type than another (quotas on accepted examples) still asks the same questions in every mode. Community
    questions (config `questions`) come first in their type's stream. Task indexes are unique across streams:
    question tasks are numbered first, then position k of type number r (of n, by name) is `questions + k*n + r`.
    """
    config = project.config
    per_call = examples_per_call or config.generation.examples_per_call
    names = sorted(project.mix)
    questions = _question_tasks(project, per_call)
    questions = [replace(task, index=index) for index, task in enumerate(questions)]
    pool = _function_pool(project)
    grounded = set(project.config.grounding.types) if pool is not None else set()
    return {name: TypeStream(functools.partial(
                _type_stream, project, name, per_call, [t for t in questions if t.type == name], pool if name in grounded else None,
                rank=rank, first=len(questions) + rank, step=len(names)))
            for rank, name in enumerate(names)}


class TypeStream:
    """One type's task stream (an iterator of its tasks). `take(context)` builds the next task on `context`
    instead of the planned one, when the type has topics there (at the planned level if it can): the run puts
    the small top-up calls of every type on one shared context, so their candidates share judge calls."""

    def __init__(self, make: Callable[[TypeStream], Iterator[Task]]):
        self.wanted: str | None = None  # read by the generator while it builds the next task
        self.state: _StreamState | None = None  # set by the generator once its community questions are out
        self.restore_from: dict | None = None  # a snapshot() to continue from, read when the first task is built
        self._tasks = make(self)

    def snapshot(self) -> dict | None:
        """What the stream has used so far as JSON data, or None while it hands out community questions: a
        stream made with `restore_from` set to it goes on with exactly the tasks this one would build next."""
        return self.state.dump() if self.state is not None else self.restore_from

    def __iter__(self) -> TypeStream:
        return self

    def __next__(self) -> Task:
        return self.take(None)

    def take(self, context: str | None) -> Task:
        self.wanted = context
        try:
            return next(self._tasks)
        finally:
            self.wanted = None


def shared_contexts(project) -> list[str]:
    """The contexts top-up calls share, in the order the waves use them: those the most types of the mix can
    use first (so every type's top-up can go there), ties in the run's context order (`context_order`), which
    the types' streams start on: the early waves' top-ups go where the types' first calls warmed the cache."""
    contexts = context_order(project)
    usable = {c: sum(1 for name in project.mix if _usable_levels(project, project.types[name], c)) for c in contexts}
    return sorted((c for c in contexts if usable[c]), key=lambda c: -usable[c])


def _usable_levels(project, example_type, context_id: str) -> list[str]:
    """The configured levels at which `context_id` has topics for `example_type` (none: the type cannot use it)."""
    if context_id not in example_type.contexts:
        return []
    return [lv for lv in project.config.complexities if lv in example_type.complexities
            and project.contexts[context_id].topics_for(example_type.topic_type, lv)]


def iter_plan(project, *, examples_per_call: int | None = None) -> Iterator[Task]:
    """Every type's stream merged in the proportions of the mix (smooth weighted round-robin), community
    questions first: the overview `--dry-run`, `ootgen render` and the estimate read."""
    streams = type_streams(project, examples_per_call=examples_per_call)
    heads: dict[str, Task] = {}
    for name, stream in streams.items():
        head = next(stream)
        while head.questions:
            yield head
            head = next(stream)
        heads[name] = head
    mix = project.mix
    current = {name: 0.0 for name in streams}
    total = sum(mix[name] for name in streams)
    while True:
        for name in streams:
            current[name] += mix[name]
        chosen = max(streams, key=lambda n: current[n])
        current[chosen] -= total
        yield heads[chosen]
        heads[chosen] = next(streams[chosen])


def _type_stream(project, name: str, per_call: int, questions: list[Task], pool, stream: TypeStream, *, rank: int,
                 first: int, step: int) -> Iterator[Task]:
    config = project.config
    rng = random.Random(f"{config.seed}:{name}")
    example_type = project.types[name]
    complexities = list(config.complexities)
    ladder = config.ladders.enabled and name in config.ladders.types
    grounder = _Grounder(project, name, pool, rng) if pool is not None else None
    restore = stream.restore_from
    if restore is None:
        for task in questions:
            yield _ground(task, grounder)

    combos = _spread_combos(project, example_type, complexities, offset=rank)
    shuffled_styles = list(example_type.instruction_variants)
    rng.shuffle(shuffled_styles)
    state = _StreamState(project, rng, first, grounder)
    if restore is not None:
        state.load(restore)
    stream.state = state

    def next_topic(context_id: str, levels: tuple[str, ...]) -> Topic:
        """The next topic of the context's cycle that suits the type and one of `levels`.

        One shuffled cycle per context, so every suitable topic is used before any repeats;
        a topic that does not suit this level waits in the queue for a task that it does suit.
        """
        queue = state.queues.setdefault(context_id, [])
        for _ in range(2):
            for position, topic in enumerate(queue):
                if any(topic.suits(example_type.topic_type, level) for level in levels):
                    return queue.pop(position)
            cycle = [t for t in project.contexts[context_id].topics_for(example_type.topic_type) if t not in queue]
            rng.shuffle(cycle)
            queue.extend(cycle)  # at most one copy of each topic waits, so the queue stays bounded
        raise AssertionError(f"no topic of {context_id} suits {name} at {levels}")  # combos exclude this case

    def next_angle(context_id: str, topic: Topic) -> str:
        """Each topic cycles through its angles in a seeded order: variety from the plan."""
        key = (context_id, topic.topic)
        if key not in state.angles:
            angles = list(topic.angles) or [""]
            rng.shuffle(angles)
            state.angles[key] = (angles, 0)
        angles, used = state.angles[key]
        state.angles[key] = (angles, used + 1)
        return angles[used % len(angles)]

    def next_style() -> str:
        state.styles += 1
        return shuffled_styles[(state.styles - 1) % len(shuffled_styles)]

    while True:
        position = state.position
        state.position += step
        context_id, level = combos[state.slots % len(combos)]
        state.slots += 1
        if stream.wanted is not None and stream.wanted != context_id:
            levels = _usable_levels(project, example_type, stream.wanted)
            if levels:  # the planned level when the wanted context has topics for it, else its first usable one
                context_id, level = stream.wanted, level if level in levels else levels[0]
        if ladder:
            steps = tuple(lv for lv in LEVEL_ORDER if lv in complexities and lv in example_type.complexities)
            ladder_topic = next_topic(context_id, steps)
            steps = tuple(lv for lv in steps if lv in ladder_topic.levels)
            angle = next_angle(context_id, ladder_topic)
            topics = (ladder_topic.topic,) * len(steps)
            styles = tuple(next_style().replace("{topic}", ladder_topic.topic) for _ in steps)
            yield _ground(Task(position, name, context_id, steps[0], topics, styles, levels=steps, ladder=True,
                               angles=(angle,) * len(steps) if angle else ()), grounder)
            continue
        picked = [next_topic(context_id, (level,)) for _ in range(per_call)]
        angles = tuple(next_angle(context_id, t) for t in picked)
        styles = tuple(next_style().replace("{topic}", t.topic) for t in picked)
        yield _ground(Task(position, name, context_id, level, tuple(t.topic for t in picked), styles,
                           angles=angles if any(angles) else ()), grounder)


class _StreamState:
    """Everything a type's stream changes as it builds tasks (past its community questions): the seeded
    generator, the positions in its cycles, the topics waiting in each context's queue, each topic's angle
    cycle and the grounder's draws. dump() gives it as JSON data, load() puts it back (the run store keeps it
    at each wave boundary, so a resume does not rebuild every earlier task)."""

    def __init__(self, project, rng: random.Random, position: int, grounder: _Grounder | None):
        self.contexts = project.contexts
        self.rng = rng
        self.position = position  # the next task's index
        self.slots = 0  # (context, level) pairs used
        self.styles = 0  # instruction styles used
        self.queues: dict[str, list[Topic]] = {}
        self.angles: dict[tuple[str, str], tuple[list[str], int]] = {}  # (context, topic) -> (its cycle, uses)
        self.grounder = grounder

    def dump(self) -> dict:
        return {"rng": rng_state(self.rng), "position": self.position, "slots": self.slots, "styles": self.styles,
                "queues": {c: positions(self.contexts[c].topics, queue) for c, queue in self.queues.items()},
                "angles": [[c, topic, angles, used] for (c, topic), (angles, used) in self.angles.items()],
                "grounder": self.grounder.dump() if self.grounder is not None else None}

    def load(self, data: dict) -> None:
        self.rng.setstate(rng_from(data["rng"]))
        self.position, self.slots, self.styles = data["position"], data["slots"], data["styles"]
        self.queues = {c: [self.contexts[c].topics[n] for n in queue] for c, queue in data["queues"].items()}
        self.angles = {(c, topic): (angles, used) for c, topic, angles, used in data["angles"]}
        if self.grounder is not None:
            self.grounder.load(data["grounder"])


def _spread_combos(project, example_type, complexities: list[str], *, offset: int) -> list[tuple[str, str]]:
    """One cycle of the type's (context, level) pairs, ordered so that any stretch of it spreads evenly: contexts
    in the run's seeded order (`context_order`) starting `offset` places along it, with no repeat before all were
    used, and levels rotating along it (shifted by `offset`, so the types of a small run start on different
    levels). Pairs no topic suits are left out."""
    levels = [lv for lv in complexities if lv in example_type.complexities]
    order = context_order(project)
    start = offset % len(order)
    contexts = [c for c in order[start:] + order[:start] if c in example_type.contexts]
    combos = []
    for i in range(len(contexts) * len(levels)):
        context_id = contexts[i % len(contexts)]
        level = levels[(i % len(contexts) + i // len(contexts) + offset) % len(levels)]
        if project.contexts[context_id].topics_for(example_type.topic_type, level):
            combos.append((context_id, level))
    return combos


def context_order(project) -> list[str]:
    """Every context in one seeded order that all types walk, type number r (by name) from place r along it: the
    types' calls meet on the same few contexts, so a context's cached prompt prefix, written by one type's call, is
    read by the others' and their candidates fill the same judge calls, while a small run still starts each type
    elsewhere (`bench/bench_run.py --rows reference` measures what it saves against an earlier commit)."""
    order = sorted(project.contexts)
    random.Random(f"{project.config.seed}:contexts").shuffle(order)
    return order


class _Grounder:
    """Attaches real decomp functions to one type's tasks (see ootgen.grounding).

    A grounded slot's instruction style comes from the type's `grounded_instruction_variants` (they may name the
    real function); the other variants speak of the user's own code, which a real decomp function is not.
    """

    def __init__(self, project, type_name: str, pool, rng: random.Random):
        self.share = project.config.grounding.share
        self.rng = random.Random(rng.random())
        self.pool = pool.fork(self.rng.randrange(2**31))
        self.variants = project.types[type_name].grounded_instruction_variants
        self.shuffled: list[str] | None = None  # the grounded instruction styles, in this stream's order
        self.used = 0  # of them

    def sources(self, task: Task) -> tuple[dict, ...]:
        chosen: list[dict] = []
        for _ in range(task.count):
            if self.rng.random() >= self.share:
                chosen.append({})
                continue
            function = self.pool.draw()
            chosen.append({**function.as_dict(), "body": self.pool.body(function)})
        return tuple(chosen) if any(chosen) else ()

    def style(self, topic: str, function: str, fallback: str) -> str:
        if not self.variants:
            return fallback
        if self.shuffled is None:
            self.shuffled = list(self.variants)
            self.rng.shuffle(self.shuffled)
        self.used += 1
        return self.shuffled[(self.used - 1) % len(self.shuffled)].replace("{topic}", topic).replace("{function}", function)

    def dump(self) -> dict:
        return {"rng": rng_state(self.rng), "pool": self.pool.dump(), "shuffled": self.shuffled, "used": self.used}

    def load(self, data: dict) -> None:
        self.rng.setstate(rng_from(data["rng"]))
        self.pool.load(data["pool"])
        self.shuffled, self.used = data["shuffled"], data["used"]


def _function_pool(project):
    """The real functions grounding draws from (each type's stream forks its own draw order), or None when off."""
    if not project.config.grounding_on:
        return None
    from .grounding import FunctionPool
    from .symbols import SymbolIndex

    settings = project.config.grounding
    index = settings.index or project.config.symbols
    return FunctionPool(settings, SymbolIndex.load(index), seed=project.config.seed)


def _ground(task: Task, grounder: _Grounder | None) -> Task:
    if grounder is None:
        return task
    sources = grounder.sources(task)
    if not sources:
        return task
    styles = tuple(
        grounder.style(topic, source["function"], style) if source and not task.question(slot) else style
        for slot, (topic, style, source) in enumerate(zip(task.topics, task.instructions, sources))
    )
    return replace(task, sources=sources, instructions=styles)


def _question_tasks(project, per_call: int) -> list[Task]:
    """Community questions grouped by best-fitting (type, context), `per_call` to a task."""
    from .questions import classify, load_questions

    path = project.config.questions
    if not path:
        return []
    groups: dict[tuple[str, str], list[str]] = {}
    for question in load_questions(path):
        groups.setdefault(classify(question, project), []).append(question)
    tasks = []
    for (type_name, context_id), questions in sorted(groups.items()):
        example_type = project.types[type_name]
        level = next((lv for lv in project.config.complexities if lv in example_type.complexities), example_type.complexities[0])
        for start in range(0, len(questions), per_call):
            chunk = tuple(questions[start : start + per_call])
            topics = tuple(_topic_of(q) for q in chunk)
            tasks.append(Task(0, type_name, context_id, level, topics, chunk, questions=chunk))
    return tasks


def _topic_of(question: str) -> str:
    words = question.split()
    return " ".join(words[:12]) + ("..." if len(words) > 12 else "")


def plan_tasks(project, count: int, *, start: int = 0) -> list[Task]:
    return list(itertools.islice(iter_plan(project), start, start + count))


def order_for_cache(tasks: list[Task]) -> list[Task]:
    """Group tasks by context (stable), so calls sharing a cached system prefix run back to back."""
    first_seen: dict[str, int] = {}
    for task in tasks:
        first_seen.setdefault(task.context, task.index)
    return sorted(tasks, key=lambda t: (first_seen[t.context], t.index))


def generation_vars(task: Task, project, *, structured: bool) -> dict:
    """The variables of a generation prompt: per request its topic, angle, level, style, question, real function,
    and the index's facts about the decomp names the topic and angle mention (so code is built on real ones)."""
    from .facts import facts_for

    variables = _generation_vars(
        project.types[task.type], project.contexts[task.context], task.complexity, task.topics, task.instructions, structured
    )
    index = _symbol_index(project)
    for slot, request in enumerate(variables["requests"]):
        request["level"] = task.level(slot)
        request["question"] = task.question(slot)
        request["source"] = task.source(slot)
        request["angle"] = task.angle(slot)
        request["facts"] = [f.text for f in facts_for(f"{request['topic']} {request['angle']}", index, limit=GENERATION_FACTS)]
    # The prompt shows each fact once: requests on the same or related topics name the same declarations.
    variables["facts"] = list(dict.fromkeys(fact for request in variables["requests"] for fact in request["facts"]))
    variables["ladder"] = task.ladder
    return variables


GENERATION_FACTS = 8  # facts per request: the names a topic and its angle mention are few
JUDGE_FACTS = 40  # facts per candidate: every decomp name it uses, functions first


def _symbol_index(project):
    from .symbols import SymbolIndex

    return SymbolIndex.load(project.config.symbols)


def _generation_vars(example_type, context, complexity: str, topics, styles, structured: bool) -> dict:
    return {
        "context": context.as_template_vars(),
        "example_type": example_type.as_template_vars(),
        "complexity": complexity,
        "count": len(topics),
        "requests": [{"topic": t, "instruction_style": s, "level": complexity, "question": "", "source": None, "angle": "", "facts": []}
                     for t, s in zip(topics, styles)],
        "facts": [],
        "ladder": False,
        "structured": structured,
        "reply_schema": None if structured else schema_text("generation_reply"),
    }


def judge_vars(candidates: list[tuple[Example, str]], project, context_id: str, *, structured: bool,
               findings: list[list[dict]] | None = None) -> dict:
    """`candidates` pairs each Example with its complexity; indexes in the prompt start at 1.

    Each candidate carries its static findings (`findings`, one list per candidate, when known). The call carries
    what its candidates share, once: each type's required parts (`types`) and the index's facts (real signatures,
    struct fields, constants) about every decomp name any candidate uses (`facts`), so the judge checks the answers
    against the decomp rather than against the context the generator also read."""
    from .facts import facts_for

    index = _symbol_index(project)
    items: list[dict] = []
    texts: list[str] = []
    types: dict[str, dict] = {}
    for number, (example, complexity) in enumerate(candidates, 1):
        texts.append("\n".join([example.instruction, example.input, example.output, *(t.content for t in example.turns)]))
        name = example.type or ""
        if name not in types:  # a type's variables once per call, shared by its candidates
            types[name] = project.types[name].as_template_vars()
        items.append(
            {
                "index": number,
                "type": types[name],
                "complexity": complexity,
                "topic": example.topic or "",
                "instruction": example.instruction,
                "input": example.input,
                "output": example.output,
                "turns": [{"role": t.role, "content": t.content} for t in example.turns],
                "findings": [_finding_vars(f) for f in (findings[number - 1] if findings else [])],
            }
        )
    return {
        "context": project.contexts[context_id].as_template_vars(),
        "candidates": items,
        "types": list(types.values()),
        # One list for the call: a struct shows the fields any candidate names, a shared call is declared once.
        "facts": [f.text for f in facts_for("\n".join(texts), index, limit=JUDGE_FACTS * max(1, len(candidates)))],
        "structured": structured,
        "reply_schema": None if structured else schema_text("judge_reply"),
    }


def _finding_vars(finding: dict) -> dict:
    return {"severity": finding["severity"], "code": finding["code"], "message": finding["message"], "location": finding.get("location", "")}


def sample_generation_vars(example_type, context, *, structured: bool) -> dict:
    """Variables of the same shape as a real task, used to test-render templates at load time."""
    topics = context.topic_names[:2]
    styles = [example_type.instruction_variants[0].replace("{topic}", t) for t in topics]
    variables = _generation_vars(example_type, context, example_type.complexities[0], topics, styles, structured)
    # Exercise the optional branches too (a community question, a real function, a ladder).
    variables["requests"][0]["question"] = "How do I make my actor face Link?"
    variables["requests"][0]["source"] = {"function": "EnSample_Update", "file": "src/overlays/actors/ovl_En_Sample/z_en_sample.c",
                                          "line": 10, "end_line": 12, "commit": None, "body": "void EnSample_Update(Actor* thisx, PlayState* play) {\n}"}
    variables["requests"][0]["angle"] = "an NPC that turns to face Link"
    variables["requests"][0]["facts"] = variables["facts"] = ["void Actor_Kill(Actor* actor);  // include/actor.h"]
    variables["ladder"] = not structured
    return variables


def sample_judge_vars(example_type, context, *, structured: bool) -> dict:
    candidate = {
        "index": 1,
        "type": example_type.as_template_vars(),
        "complexity": example_type.complexities[0],
        "topic": context.topic_names[0],
        "instruction": "How does Actor_Kill work?",
        "input": "",
        "output": "It marks the actor for deletion.",
        "turns": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "findings": [{"severity": "warning", "code": "SAMPLE", "message": "a sample finding", "location": "output"}],
    }
    return {
        "context": context.as_template_vars(),
        "candidates": [candidate],
        "types": [candidate["type"]],
        "facts": ["void Actor_Kill(Actor* actor);  // include/actor.h"],
        "structured": structured,
        "reply_schema": None if structured else schema_text("judge_reply"),
    }
