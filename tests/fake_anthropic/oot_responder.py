"""A realistic responder for ootgen's two structured replies: generation and judging.

Plugs into FakeAnthropic (`responder=OotResponder(...)`, or config `{"responder": "oot", "oot": {...}}`).
Examples use only identifiers that exist in the current zeldaret/oot decomp, with the right arities
(checked against ../shared/oot-decomp/functions.json); `bad_fraction` makes some deliberately wrong.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections.abc import Callable
from typing import Any

from .server import default_responder, prompt_text, requested_schema

# Actors whose struct has `Actor actor` first, a `ColliderCylinder collider`, `SkelAnime skelAnime`
# and an `actionFunc` (from structs.json at the pinned commit), so the snippets below fit them all.
ACTORS = (
    "EnOkuta", "EnWallmas", "EnNiw", "EnZl1", "EnDodojr", "EnBili", "EnOssan", "EnDekunuts", "EnTa",
    "EnTk", "EnFloormas", "EnRd", "EnPoSisters", "EnDu", "EnHeishi2", "EnSb", "EnIn", "EnMa2",
    "EnAnubice", "EnMa1", "EnSkj", "EnDns", "EnPoRelay", "EnDivingGame", "EnToryo", "EnDaiku", "EnGe1",
    "EnNiwLady", "EnGm", "EnMs", "EnHs", "EnHeishi3", "EnSyatekiNiw", "EnSa", "EnMk", "EnOwl", "EnGo",
    "EnMm",
)  # fmt: skip
_SFX = ("NA_SE_SY_CORRECT_CHIME", "NA_SE_EN_NUTS_DAMAGE", "NA_SE_SY_TRE_BOX_APPEAR", "NA_SE_EV_STONE_BOUND",
        "NA_SE_EN_OCTAROCK_JUMP")  # fmt: skip
_FALLBACK_TOPICS = (
    "actor initialization", "collision cylinders", "actor movement", "switch flags", "drawing a skeleton",
    "talking to an NPC", "returning to the home position", "random wandering",
)  # fmt: skip
CODE_INPUT_TYPES = {"code_explanation", "debugging_help", "code_modification"}
# A scenario of five words picked by the digits of the run number (12**5 = 248,832 distinct ones), put in the
# instruction and as a comment atop the code: at 100k examples the replies stay further apart than the dedup
# threshold, as a real model's would, instead of cycling through a few hundred near-identical shapes.
_SCENARIO = (
    ("forest", "desert", "lakeside", "castle", "graveyard", "volcano", "village", "temple", "canyon", "swamp",
     "tower", "harbor"),
    ("guard", "merchant", "sentry", "wanderer", "keeper", "hermit", "scout", "courier", "warden", "pilgrim",
     "tinker", "fisher"),
    ("lantern", "shield", "ocarina", "compass", "mask", "boomerang", "hookshot", "bottle", "feather", "crystal",
     "medallion", "scroll"),
    ("dawn", "noon", "dusk", "midnight", "rainfall", "snowfall", "eclipse", "harvest", "festival", "storm",
     "twilight", "moonrise"),
    ("puzzle", "escort", "ambush", "race", "riddle", "chase", "duel", "rescue", "trade", "patrol", "siege", "hunt"),
)  # fmt: skip


def _snippet(kind: int, a: str, n: int, bad: str | None = None) -> tuple[str, str, list[str]]:
    """(function name, C code, explanation bullets) for snippet `kind` of actor `a`, varied by `n`."""
    play = "GlobalContext* globalCtx" if bad == "globalCtx" else "PlayState* play"
    p = "globalCtx" if bad == "globalCtx" else "play"
    scale = f"{0.005 + (n % 7) * 0.0025:.4f}".rstrip("0") + "f"
    speed = f"{1.0 + (n % 5) * 0.5:.1f}f"
    step = 0x200 + (n % 6) * 0x100
    sfx = _SFX[n % len(_SFX)]
    extra = "    Actor_DoesNotExist(&this->actor);\n" if bad == "missing_fn" else ""
    if kind == 0:
        name = f"{a}_Init"
        code = (
            f"void {name}(Actor* thisx, {play}) {{\n    {a}* this = ({a}*)thisx;\n\n"
            f"    ActorShape_Init(&this->actor.shape, 0.0f, ActorShadow_DrawCircle, {20 + n % 9}.0f);\n"
            f"    Actor_SetScale(&this->actor, {scale});\n"
            f"    Collider_InitCylinder({p}, &this->collider);\n"
            f"    Collider_SetCylinder({p}, &this->collider, &this->actor, &sCylinderInit);\n{extra}"
            f"    this->actor.gravity = -1.0f;\n}}\n"
        )
        notes = [
            "`thisx` is the generic `Actor*`; the cast gives access to the actor's own struct fields.",
            f"`ActorShape_Init` sets the shadow: `ActorShadow_DrawCircle` with a radius of {20 + n % 9}.",
            f"`Actor_SetScale(&this->actor, {scale})` scales the model uniformly.",
            "`Collider_InitCylinder` and `Collider_SetCylinder` build the collider from `sCylinderInit`.",
            "A negative `gravity` makes `Actor_MoveXZGravity` pull the actor down each frame.",
        ]
    elif kind == 1:
        name = f"{a}_Update"
        code = (
            f"void {name}(Actor* thisx, {play}) {{\n    {a}* this = ({a}*)thisx;\n\n"
            f"    Math_SmoothStepToS(&this->actor.shape.rot.y, this->actor.yawTowardsPlayer, 5, 0x{step:X}, 0x100);\n"
            f"    this->actor.world.rot.y = this->actor.shape.rot.y;\n"
            f"    Math_SmoothStepToF(&this->actor.speed, {speed}, 1.0f, 0.5f, 0.0f);\n{extra}"
            f"    Actor_MoveXZGravity(&this->actor);\n"
            f"    Actor_UpdateBgCheckInfo({p}, &this->actor, 20.0f, {25 + n % 10}.0f, 40.0f,\n"
            f"                            UPDBGCHECKINFO_FLAG_0 | UPDBGCHECKINFO_FLAG_2);\n"
            f"    Collider_UpdateCylinder(&this->actor, &this->collider);\n"
            f"    CollisionCheck_SetOC({p}, &{p}->colChkCtx, &this->collider.base);\n}}\n"
        )
        notes = [
            f"`Math_SmoothStepToS` turns the model toward `yawTowardsPlayer`, at most 0x{step:X} units per frame.",
            f"`Math_SmoothStepToF` eases `actor.speed` toward {speed} (five arguments: value, target, fraction, step, minStep).",
            "`Actor_MoveXZGravity` applies speed along `world.rot.y` plus gravity to the position.",
            "`Actor_UpdateBgCheckInfo` resolves walls and floors against the scene collision.",
            "`Collider_UpdateCylinder` moves the cylinder to the actor before `CollisionCheck_SetOC` registers it.",
        ]
    elif kind == 2:
        name = f"{a}_WaitForSwitch"
        code = (
            f"void {name}({a}* this, {play}) {{\n"
            f"    if (Flags_GetSwitch({p}, this->actor.params & 0x3F)) {{\n"
            f"        Actor_PlaySfx(&this->actor, {sfx});\n{extra}"
            f"        Actor_Kill(&this->actor);\n    }}\n}}\n"
        )
        notes = [
            "The low six bits of `actor.params` hold the switch flag, a common decomp convention.",
            "`Flags_GetSwitch(play, flag)` reads the room's switch flags.",
            f"`Actor_PlaySfx` plays `{sfx}` from the actor's position.",
            "`Actor_Kill` marks the actor for deletion; its Destroy function runs later.",
        ]
    elif kind == 3:
        name = f"{a}_ReturnHome"
        code = (
            f"void {name}({a}* this, {play}) {{\n"
            f"    if (Math_StepToF(&this->actor.world.pos.y, this->actor.home.pos.y, {speed})) {{\n{extra}"
            f"        this->actor.velocity.y = 0.0f;\n"
            f"        Actor_SetFocus(&this->actor, {30 + n % 20}.0f);\n    }}\n}}\n"
        )
        notes = [
            f"`Math_StepToF` moves `world.pos.y` toward `home.pos.y` by {speed} per frame and returns true on arrival.",
            "`home` is where the actor spawned; `world` is where it is now.",
            f"`Actor_SetFocus` puts the Z-target point {30 + n % 20} units above the actor's origin.",
        ]
    elif kind == 4:
        name = f"{a}_Draw"
        code = (
            f"void {name}(Actor* thisx, {play}) {{\n    {a}* this = ({a}*)thisx;\n\n"
            f"    Gfx_SetupDL_25Opa({p}->state.gfxCtx);\n{extra}"
            f"    SkelAnime_DrawOpa({p}, this->skelAnime.skeleton, this->skelAnime.jointTable, NULL, NULL, this);\n}}\n"
        )
        notes = [
            "`Gfx_SetupDL_25Opa` prepares the opaque display list state from `play->state.gfxCtx`.",
            "`SkelAnime_DrawOpa` draws every limb of the skeleton from the current `jointTable`.",
            "The two `NULL`s are the override and post limb-draw callbacks; `this` is passed back to them.",
        ]
    elif kind == 5:
        name = f"{a}_Wander"
        code = (
            f"void {name}({a}* this, {play}) {{\n"
            f"    this->actor.world.rot.y += (s16)Rand_CenteredFloat(0x{step * 4:X});\n"
            f"    Math_ApproachF(&this->actor.speed, {speed}, 0.3f, 0.5f);\n{extra}"
            f"    if (Actor_WorldDistXZToPoint(&this->actor, &this->actor.home.pos) > {150 + (n % 6) * 25}.0f) {{\n"
            f"        this->actor.world.rot.y = Actor_WorldYawTowardPoint(&this->actor, &this->actor.home.pos);\n"
            f"    }}\n    this->actor.shape.rot.y = this->actor.world.rot.y;\n}}\n"
        )
        notes = [
            f"`Rand_CenteredFloat(0x{step * 4:X})` adds a random turn between -0x{step * 2:X} and +0x{step * 2:X}.",
            "`Math_ApproachF` (four arguments) moves the speed a fraction of the way to the target.",
            f"Past {150 + (n % 6) * 25} units from home, `Actor_WorldYawTowardPoint` turns it back.",
        ]
    else:
        name = f"{a}_Talk"
        code = (
            f"void {name}({a}* this, {play}) {{\n"
            f"    if (Actor_TalkOfferAccepted(&this->actor, {p})) {{\n"
            f"        Actor_PlaySfx(&this->actor, {sfx});\n{extra}"
            f"    }} else {{\n        Actor_OfferTalk(&this->actor, {p}, {80 + (n % 8) * 10}.0f);\n    }}\n}}\n"
        )
        notes = [
            "`Actor_OfferTalk` lets the player start a conversation within the given radius this frame.",
            "`Actor_TalkOfferAccepted` returns true on the frame the player accepts by pressing A.",
            "Offering every frame is normal: the offer lasts one frame only.",
        ]
    return name, code, notes


_PHRASES = {
    "code_explanation": (
        "Explain what `{fn}` does in the OoT decomp, in the context of {topic}.",
        "Walk me through `{fn}` line by line; I'm studying {topic}.",
        "What is this function from `ovl_{ovl}` doing? I'm trying to understand {topic}.",
        "Break down `{fn}` step by step with a focus on {topic}.",
    ),
    "debugging_help": (
        "My custom version of `{fn}` misbehaves in game. Can you find the bug? (I'm working on {topic}.)",
        "I copied `{fn}` into my own actor while learning {topic}, but it doesn't work right. What's wrong?",
        "Why does this `{fn}` variant break {topic} in my romhack?",
    ),
    "code_modification": (
        "Modify `{fn}` so it behaves differently for {topic}: make it faster and more responsive.",
        "How would I change `{fn}` to tweak {topic} for my romhack?",
        "Rewrite `{fn}` to adjust {topic}, keeping the decomp's conventions.",
    ),
    "feature_implementation": (
        "How do I implement {topic} in a custom actor based on `{a}`?",
        "Show me how to add {topic} to my own actor, the way `ovl_{ovl}` does it.",
        "Write the code for {topic} in a new actor modeled on `{a}`.",
    ),
    "architecture_question": (
        "How does the OoT engine organize {topic}, and where does `{fn}` fit in?",
        "Which systems are involved in {topic}? Use `{fn}` as an example.",
        "Explain the design behind {topic} in the decomp, with `{fn}` as a case study.",
    ),
}


class OotResponder:
    """Callable responder: `OotResponder(bad_fraction=0.2)(request_json) -> str`.

    Instructions never repeat across one responder's lifetime (a running counter picks actor,
    snippet and phrasing), unless `duplicate_fraction` asks for duplicates on purpose.
    """

    def __init__(
        self,
        *,
        bad_fraction: float = 0.0,
        duplicate_fraction: float = 0.0,
        seed: int = 0,
        fence_without_schema: bool = True,
        fallback: Callable[[dict[str, Any]], str] | None = None,
        keyed: bool = False,
    ) -> None:
        self.bad_fraction = float(bad_fraction)
        self.duplicate_fraction = float(duplicate_fraction)
        self.fence_without_schema = fence_without_schema
        # keyed: every example is a function of the prompt and its slot (not of the order requests arrive in),
        # so streaming, batch and a resumed run get the same candidates for the same task.
        self.keyed = keyed
        self.fallback = fallback or default_responder
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counter = 0
        self._history: list[dict[str, Any]] = []
        self.generated = 0  # examples produced
        self.bad_generated = 0
        self.duplicates_generated = 0

    def __call__(self, request: dict[str, Any]) -> str:
        schema = requested_schema(request)
        text = prompt_text(request)
        title = (schema or {}).get("title")
        if title == "judge_reply" or (schema is None and "<candidate" in text):
            reply = self.judge(text)
        elif title == "generation_reply" or (
            schema is None and ("<examples_wanted>" in text or "<example_type>" in text)
        ):
            reply = self.generate(text)
        else:
            return self.fallback(request)
        body = json.dumps(reply, indent=2)
        if schema is None and self.fence_without_schema:
            return f"Here is the JSON you asked for.\n\n```json\n{body}\n```\n"
        return body

    # ----- generation ----------------------------------------------------------------------------

    def generate(self, prompt: str) -> dict[str, Any]:
        wanted = _tag_int(prompt, "examples_wanted", default=1)
        example_type = (_tag(prompt, "example_type") or "code_explanation").strip()
        topics = [t.strip() for t in re.findall(r"<topic(?:\s[^>]*)?>(.*?)</topic>", prompt, re.S)]  # <topic index=.. level=..>
        examples: list[dict[str, Any]] = []
        for i in range(max(wanted, 0)):
            topic = topics[i] if i < len(topics) else _FALLBACK_TOPICS[i % len(_FALLBACK_TOPICS)]
            with self._lock:
                if self.keyed:
                    draw = random.Random(hashlib.sha256(f"{i}:{prompt}".encode()).hexdigest())
                    duplicate = draw.random() < self.duplicate_fraction and bool(examples)
                    bad_draw = draw.random() < self.bad_fraction
                    n = draw.randrange(10**6)
                else:
                    duplicate = self._rng.random() < self.duplicate_fraction and bool(self._history or examples)
                    bad_draw = self._rng.random() < self.bad_fraction
                    n = self._counter
                    self._counter += 1
            if duplicate and self.keyed:
                example = dict(examples[-1])
                with self._lock:
                    self.duplicates_generated += 1
            elif duplicate:
                pool = examples or self._history
                with self._lock:
                    example = dict(pool[self._rng.randrange(len(pool))])
                    self.duplicates_generated += 1
            else:
                bad = ("missing_fn", "globalCtx")[n % 2] if bad_draw else None
                example = self._example(n, example_type, topic, bad)
            examples.append(example)
        with self._lock:
            self._history.extend(examples)
            self.generated += len(examples)
        return {"examples": examples}

    def _example(self, n: int, example_type: str, topic: str, bad: str | None) -> dict[str, Any]:
        actor = ACTORS[n % len(ACTORS)]
        kind = (n // len(ACTORS) + n) % 7
        if example_type == "debugging_help":
            kind = (1, 2)[n % 2]  # snippets with a line whose removal is a realistic bug
        ovl = re.sub(r"(?<!^)([A-Z])", r"_\1", actor)
        fn, code, notes = _snippet(kind, actor, n, bad)
        if bad:
            with self._lock:
                self.bad_generated += 1
        conversational = "conversation" in example_type or "multi_turn" in example_type
        phrases = _PHRASES.get(example_type, _PHRASES["architecture_question" if conversational else "code_explanation"])
        instruction = phrases[n % len(phrases)].format(fn=fn, a=actor, ovl=ovl, topic=topic)
        scenario = _scenario(n)
        # The run number keeps instructions unique even when actor/snippet/phrasing cycle around.
        instruction += f" It is for a {scenario} scene (case {n + 1}: `{actor}`, `ovl_{ovl}`)."
        code = f"// {scenario} variant\n{code}"
        input_code = ""
        if example_type in CODE_INPUT_TYPES:
            if example_type == "debugging_help":
                input_code = _without_line(code, "Collider_UpdateCylinder" if kind == 1 else "Actor_Kill")
            else:
                input_code = code
        output = self._answer(example_type, actor, fn, code, notes, topic)
        turns: list[dict[str, str]] = []
        if conversational:
            count = 2 + 2 * (n % 3)  # 2, 4 or 6 turns
            questions = [
                instruction,
                f"Where is `{fn}` called from, and how often?",
                f"Could I reuse `{fn}` in a different actor than `{actor}`?",
            ]
            answers = [
                output,
                f"`{fn}` runs from the actor's update or init path: the engine calls `update` once per frame for "
                f"every active actor in `play->actorCtx`, so anything in it happens every frame (20 per second on NTSC).",
                f"Yes. Copy it, rename the struct to your actor's, and keep the `Actor actor` member first so the "
                f"`({actor}*)thisx` style cast stays valid.\n\n```c\n{code}```\n",
            ]
            for t in range(count // 2):
                turns.append({"role": "user", "content": questions[t]})
                turns.append({"role": "assistant", "content": answers[t]})
        return {"topic": topic, "instruction": instruction, "input": input_code, "output": output, "turns": turns}

    @staticmethod
    def _answer(example_type: str, actor: str, fn: str, code: str, notes: list[str], topic: str) -> str:
        bullets = "\n".join(f"- {note}" for note in notes)
        intro = {
            "debugging_help": f"The bug is a missing step: the collider or the despawn is never updated, so {topic} "
            f"goes wrong. Here is the corrected `{fn}`:",
            "code_modification": f"Here is `{fn}` adjusted for {topic}. The structure stays the same; only the "
            f"tuning values and order of calls matter:",
            "feature_implementation": f"You can build {topic} the way `{actor}` does. A minimal version:",
        }.get(example_type, f"`{fn}` is part of `{actor}` and is a good example of {topic}.")
        return (
            f"## {fn}\n\n{intro}\n\n```c\n{code}```\n\n### How it works\n\n{bullets}\n\n"
            f"### Why it matters\n\nEvery actor in the decomp follows this pattern, so once you can read "
            f"`{fn}` you can read most of the other `ovl_En_*` overlays too.\n"
        )

    # ----- judging -------------------------------------------------------------------------------

    def judge(self, prompt: str) -> dict[str, Any]:
        blocks = re.findall(r"<candidate\s+index\s*=\s*\"?(\d+)\"?\s*>(.*?)</candidate>", prompt, re.S)
        if not blocks:
            blocks = [("0", prompt)]
        # Judge the candidate's own text, not the type's requirement list the prompt repeats beside it.
        return {"verdicts": [self._verdict(int(index), _without_requirements(text)) for index, text in blocks]}

    @staticmethod
    def _verdict(index: int, text: str) -> dict[str, Any]:
        issues = []
        if "DoesNotExist" in text:
            issues.append("Calls `Actor_DoesNotExist`, which is not a function in the decomp.")
        if "globalCtx" in text or "GlobalContext" in text:
            issues.append("Uses the old `GlobalContext* globalCtx` naming; the current decomp uses `PlayState* play`.")
        if issues:
            scores = {"clarity": 5, "completeness": 4, "practical_value": 3, "level_of_detail": 5, "teaching_value": 3}
            return {
                "index": index,
                "technical_accuracy": 2,
                "technical_issues": issues,
                "uses_correct_terminology": False,
                "usefulness": scores,
                "summary": "Readable, but technically wrong for the current decomp.",
            }
        has_code = "```c" in text or "Actor* thisx" in text
        scores = {
            "clarity": 9,
            "completeness": 8 if has_code else 6,
            "practical_value": 8 if has_code else 6,
            "level_of_detail": 8,
            "teaching_value": 9,
        }
        return {
            "index": index,
            "technical_accuracy": 9,
            "technical_issues": [],
            "uses_correct_terminology": True,
            "usefulness": scores,
            "summary": "Accurate and clear, with correct current decomp names.",
        }


def _scenario(n: int) -> str:
    words = []
    for choices in _SCENARIO:
        n, digit = divmod(n, len(choices))
        words.append(choices[digit])
    return " ".join(words)


def _without_requirements(text: str) -> str:
    return re.sub(r"Required in a good answer:\n(?:- .*\n)*", "", text)


def _tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>(.*?)</{name}>", text, re.S)
    return match.group(1) if match else None


def _tag_int(text: str, name: str, default: int) -> int:
    value = _tag(text, name)
    try:
        return int(value.strip()) if value is not None else default
    except ValueError:
        return default


def _without_line(code: str, needle: str) -> str:
    return "".join(line for line in code.splitlines(keepends=True) if needle not in line)
