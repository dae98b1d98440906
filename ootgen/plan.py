"""Pipeline stage 2, plan: a deterministic stream of generation tasks from the config and its seed.

Types follow the configured mix exactly (smooth weighted round-robin, not random draws); each type
cycles through its contexts x complexities, and each context's topics are used before any repeats.
Same config + seed -> same plan.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace

from .records import LEVELS, Example, Topic
from .schemas import schema_text

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

    @property
    def key(self) -> str:
        return f"task-{self.index:06d}"

    @property
    def count(self) -> int:
        return len(self.topics)


def iter_plan(project, *, examples_per_call: int | None = None) -> Planner:
    """The infinite, deterministic task stream of a project (take as many as the run needs).

    Community questions (config `questions`) come first, then the mix-driven stream.
    """
    return Planner(project, examples_per_call=examples_per_call)


PLAN_STATE_VERSION = 1  # bump when Planner.state() changes meaning: an older checkpoint is then ignored


class _Cycle:
    """`itertools.cycle` whose position can be saved (a plan checkpoint is plain JSON)."""

    def __init__(self, items: list, at: int = 0) -> None:
        self.items = items
        self.at = at

    def __next__(self):
        item = self.items[self.at % len(self.items)]
        self.at += 1
        return item


class Planner:
    """The plan as an iterator whose whole state is plain data: `state()` after any task, and
    `Planner(project, state=...)` continues exactly where that state was taken, so a resumed run does
    not replay every task before its checkpoint (issue 17)."""

    def __init__(self, project, *, examples_per_call: int | None = None, state: dict | None = None) -> None:
        config = project.config
        self.project = project
        self.per_call = examples_per_call or config["generation"]["examples_per_call"]
        self.rng = random.Random(config["seed"])
        self.mix = project.mix
        self.names = sorted(self.mix)
        self.rng.shuffle(self.names)
        self.complexities = list(config["complexities"])
        ladders = config.section("ladders")
        self.ladder_types = set(ladders.get("types") or []) if ladders.get("enabled") else set()
        self.grounder = _Grounder(project, self.rng) if config.grounding_on else None
        self.questions = _question_tasks(project, self.per_call)
        self.slots: dict[str, _Cycle] = {}
        self.variants: dict[str, _Cycle] = {}
        for name in self.names:
            example_type = project.types[name]
            combos = [
                (ctx, level)
                for ctx in example_type.contexts
                for level in self.complexities
                if level in example_type.complexities and project.contexts[ctx].topics_for(example_type.topic_type, level)
            ]
            self.rng.shuffle(combos)
            self.slots[name] = _Cycle(combos)
            shuffled_styles = list(example_type.instruction_variants)
            self.rng.shuffle(shuffled_styles)
            self.variants[name] = _Cycle(shuffled_styles)
        # (type, context) -> positions in the context's topics_for(type) waiting to be used
        self.topic_queues: dict[tuple[str, str], list[int]] = {}
        self.angle_cycles: dict[tuple[str, str, str], _Cycle] = {}
        self.current = {name: 0.0 for name in self.names}
        self.total = sum(self.mix.values())
        self.position = 0
        if state is not None:
            self._restore(state)

    def __iter__(self) -> Planner:
        return self

    def __next__(self) -> Task:
        position = self.position
        self.position += 1
        if position < len(self.questions):
            return _ground(replace(self.questions[position], index=position), self.grounder)
        return _ground(self._mixed_task(position), self.grounder)

    def _mixed_task(self, position: int) -> Task:
        names, mix = self.names, self.mix
        for name in names:  # smooth weighted round-robin: deterministic and proportional to the mix
            self.current[name] += mix[name]
        chosen = max(names, key=lambda n: self.current[n])
        self.current[chosen] -= self.total
        context_id, level = next(self.slots[chosen])
        if chosen in self.ladder_types:
            steps = tuple(lv for lv in LEVEL_ORDER if lv in self.complexities and lv in self.project.types[chosen].complexities)
            ladder_topic = self._next_topic(chosen, context_id, steps)
            steps = tuple(lv for lv in steps if lv in ladder_topic.levels)
            angle = self._next_angle(chosen, context_id, ladder_topic)
            topics = (ladder_topic.topic,) * len(steps)
            styles = tuple(next(self.variants[chosen]).replace("{topic}", ladder_topic.topic) for _ in steps)
            return Task(position, chosen, context_id, steps[0], topics, styles, levels=steps, ladder=True,
                        angles=(angle,) * len(steps) if angle else ())
        picked = [self._next_topic(chosen, context_id, (level,)) for _ in range(self.per_call)]
        angles = tuple(self._next_angle(chosen, context_id, t) for t in picked)
        styles = tuple(next(self.variants[chosen]).replace("{topic}", t.topic) for t in picked)
        return Task(position, chosen, context_id, level, tuple(t.topic for t in picked), styles,
                    angles=angles if any(angles) else ())

    def _topics(self, type_name: str, context_id: str) -> tuple[Topic, ...]:
        return self.project.contexts[context_id].topics_for(self.project.types[type_name].topic_type)

    def _next_topic(self, type_name: str, context_id: str, levels: tuple[str, ...]) -> Topic:
        """The next topic of the (type, context) cycle that suits the type and one of `levels`.

        One shuffled cycle per (type, context), so every suitable topic is used before any repeats;
        a topic that does not suit this level waits in the queue for a task that it does suit.
        """
        queue = self.topic_queues.setdefault((type_name, context_id), [])
        topics = self._topics(type_name, context_id)
        topic_type = self.project.types[type_name].topic_type
        for _ in range(2):
            for at, position in enumerate(queue):
                if any(topics[position].suits(topic_type, level) for level in levels):
                    return topics[queue.pop(at)]
            waiting = {topics[position] for position in queue}
            cycle = [t for t in topics if t not in waiting]
            self.rng.shuffle(cycle)
            first = {t: position for position, t in reversed(list(enumerate(topics)))}  # equal topics are one
            queue.extend(first[t] for t in cycle)  # at most one copy of each topic waits, so the queue stays bounded
        raise AssertionError(f"no topic of {context_id} suits {type_name} at {levels}")  # combos exclude this case

    def _next_angle(self, type_name: str, context_id: str, topic: Topic) -> str:
        """Each (type, topic) cycles through the topic's angles in a seeded order: variety from the plan."""
        key = (type_name, context_id, topic.topic)
        if key not in self.angle_cycles:
            angles = list(topic.angles) or [""]
            self.rng.shuffle(angles)
            self.angle_cycles[key] = _Cycle(angles)
        return next(self.angle_cycles[key])

    def state(self) -> dict:
        """Everything the next task depends on, as JSON-able data (see `Planner(state=...)`)."""
        return {
            "version": PLAN_STATE_VERSION,
            "position": self.position,
            "rng": self.rng.getstate(),
            "slots": {name: cycle.at for name, cycle in self.slots.items()},
            "variants": {name: cycle.at for name, cycle in self.variants.items()},
            "topic_queues": [[type_name, context_id, queue] for (type_name, context_id), queue in self.topic_queues.items()],
            "angle_cycles": [[*key, cycle.items, cycle.at] for key, cycle in self.angle_cycles.items()],
            "current": self.current,
            "grounder": self.grounder.state() if self.grounder else None,
        }

    def _restore(self, state: dict) -> None:
        if state.get("version") != PLAN_STATE_VERSION or set(state["current"]) != set(self.names):
            raise ValueError("the plan checkpoint belongs to another plan")
        self.position = int(state["position"])
        self.rng.setstate(_rng_from(state["rng"]))
        for name, at in state["slots"].items():
            self.slots[name].at = at
        for name, at in state["variants"].items():
            self.variants[name].at = at
        self.topic_queues = {(type_name, context_id): list(queue) for type_name, context_id, queue in state["topic_queues"]}
        self.angle_cycles = {(t, c, topic): _Cycle(list(items), at) for t, c, topic, items, at in state["angle_cycles"]}
        self.current = {name: float(value) for name, value in state["current"].items()}
        if (self.grounder is None) != (state["grounder"] is None):
            raise ValueError("the plan checkpoint belongs to another plan")
        if self.grounder is not None:
            self.grounder.restore(state["grounder"])


def _rng_from(state: list) -> tuple:
    """random.Random.getstate() as JSON gave it back (lists for tuples)."""
    return (state[0], tuple(state[1]), state[2])


class _Grounder:
    """Attaches real decomp functions to tasks of the configured types (see ootgen.grounding).

    A grounded slot's instruction style comes from the type's `grounded_instruction_variants` (they may name the
    real function); the other variants speak of the user's own code, which a real decomp function is not.
    """

    def __init__(self, project, rng: random.Random):
        from .grounding import FunctionPool
        from .symbols import SymbolIndex

        settings = project.config.section("grounding")
        self.project = project
        self.types = set(settings["types"])
        self.share = settings["share"]
        self.rng = random.Random(rng.random())
        index = settings.get("index") or project.config.get("symbols") or "default"
        self.pool = FunctionPool(settings, SymbolIndex.load(index), seed=self.rng.randrange(2**31))
        self.styles: dict[str, _Cycle] = {}

    def sources(self, task: Task) -> tuple[dict, ...]:
        if task.type not in self.types:
            return ()
        chosen: list[dict] = []
        for _ in range(task.count):
            if self.rng.random() >= self.share:
                chosen.append({})
                continue
            function = self.pool.draw()
            chosen.append({**function.as_dict(), "body": self.pool.body(function)})
        return tuple(chosen) if any(chosen) else ()

    def style(self, type_name: str, topic: str, function: str, fallback: str) -> str:
        variants = self.project.types[type_name].grounded_instruction_variants
        if not variants:
            return fallback
        if type_name not in self.styles:
            shuffled = list(variants)
            self.rng.shuffle(shuffled)
            self.styles[type_name] = _Cycle(shuffled)
        return next(self.styles[type_name]).replace("{topic}", topic).replace("{function}", function)

    def state(self) -> dict:
        return {"rng": self.rng.getstate(), "pool": self.pool.state(),
                "styles": {name: [cycle.items, cycle.at] for name, cycle in self.styles.items()}}

    def restore(self, state: dict) -> None:
        self.rng.setstate(_rng_from(state["rng"]))
        self.pool.restore(state["pool"])
        self.styles = {name: _Cycle(list(items), at) for name, (items, at) in state["styles"].items()}


def _ground(task: Task, grounder: _Grounder | None) -> Task:
    if grounder is None:
        return task
    sources = grounder.sources(task)
    if not sources:
        return task
    styles = tuple(
        grounder.style(task.type, topic, source["function"], style) if source and not task.question(slot) else style
        for slot, (topic, style, source) in enumerate(zip(task.topics, task.instructions, sources))
    )
    return replace(task, sources=sources, instructions=styles)


def _question_tasks(project, per_call: int) -> list[Task]:
    """Community questions grouped by best-fitting (type, context), `per_call` to a task."""
    from .questions import classify, load_questions

    path = project.config.get("questions")
    if not path:
        return []
    groups: dict[tuple[str, str], list[str]] = {}
    for question in load_questions(path):
        groups.setdefault(classify(question, project), []).append(question)
    tasks = []
    for (type_name, context_id), questions in sorted(groups.items()):
        example_type = project.types[type_name]
        level = next((lv for lv in project.config["complexities"] if lv in example_type.complexities), example_type.complexities[0])
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
    variables["ladder"] = task.ladder
    return variables


GENERATION_FACTS = 8  # facts per request: the names a topic and its angle mention are few
JUDGE_FACTS = 40  # facts per candidate: every decomp name it uses, functions first


def _symbol_index(project):
    from .symbols import SymbolIndex

    return SymbolIndex.load(project.config.get("symbols") or "default")


def _generation_vars(example_type, context, complexity: str, topics, styles, structured: bool) -> dict:
    return {
        "context": context.as_template_vars(),
        "example_type": example_type.as_template_vars(),
        "complexity": complexity,
        "count": len(topics),
        "requests": [{"topic": t, "instruction_style": s, "level": complexity, "question": "", "source": None, "angle": "", "facts": []}
                     for t, s in zip(topics, styles)],
        "ladder": False,
        "structured": structured,
        "reply_schema": None if structured else schema_text("generation_reply"),
    }


def judge_vars(candidates: list[tuple[Example, str]], project, context_id: str, *, structured: bool,
               findings: list[list[dict]] | None = None) -> dict:
    """`candidates` pairs each Example with its complexity; indexes in the prompt start at 1.

    Each candidate carries its static findings (`findings`, one list per candidate, when known) and the index's
    facts (real signatures, struct fields, constants) about every decomp name it uses, so the judge checks the
    answer against the decomp rather than against the context the generator also read."""
    from .facts import facts_for

    index = _symbol_index(project)
    items = []
    for number, (example, complexity) in enumerate(candidates, 1):
        text = "\n".join([example.instruction, example.input, example.output, *(t.content for t in example.turns)])
        items.append(
            {
                "index": number,
                "type": project.types[example.type].as_template_vars(),
                "complexity": complexity,
                "topic": example.topic or "",
                "instruction": example.instruction,
                "input": example.input,
                "output": example.output,
                "turns": [{"role": t.role, "content": t.content} for t in example.turns],
                "findings": [_finding_vars(f) for f in (findings[number - 1] if findings else [])],
                "facts": [f.text for f in facts_for(text, index, limit=JUDGE_FACTS)],
            }
        )
    return {
        "context": project.contexts[context_id].as_template_vars(),
        "candidates": items,
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
    variables["requests"][0]["facts"] = ["void Actor_Kill(Actor* actor);  // include/actor.h"]
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
        "facts": ["void Actor_Kill(Actor* actor);  // include/actor.h"],
    }
    return {
        "context": context.as_template_vars(),
        "candidates": [candidate],
        "structured": structured,
        "reply_schema": None if structured else schema_text("judge_reply"),
    }
