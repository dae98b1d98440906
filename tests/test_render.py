"""Stage 3, render: `ootgen render` shows the exact prompts; templates are sandboxed and strict."""

from __future__ import annotations

import re

import pytest

from ootgen.load import load_project
from tests.conftest import run_cli
from tests.test_load import cli_env, load_error, ready_project

SYSTEM_BAR = re.compile(r"^=+ system \(cached prefix\) =+$", re.M)
USER_BAR = re.compile(r"^=+ user =+$", re.M)


def _split(stdout: str) -> tuple[str, str, str]:
    head, rest = SYSTEM_BAR.split(stdout, maxsplit=1)
    system, user = USER_BAR.split(rest, maxsplit=1)
    return head, system, user


def test_render_prints_system_and_user_prompts_with_context_in_system(project_dir):
    cfg = ready_project(project_dir)
    result = run_cli("render", str(cfg), "--type", "code_explanation", "--index", "2", "--seed", "7", cwd=project_dir, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    head, system, user = _split(result.stdout)
    task = re.search(r"type=(\S+) context=(\S+) complexity=(\S+)", head)
    assert task and task.group(1) == "code_explanation"

    project = load_project(cfg, ["seed=7"])
    context = project.contexts[task.group(2)]
    assert context.id in project.types["code_explanation"].contexts
    assert context.body.strip() in system
    assert context.title in system
    assert context.body.strip() not in user
    assert f"<complexity>{task.group(3)}</complexity>" in user
    assert '"code_explanation"' in user


def test_render_is_deterministic_for_a_seed_and_index(project_dir):
    cfg = ready_project(project_dir)
    args = ("render", str(cfg), "--type", "code_explanation", "--index", "1", "--seed", "3")
    first = run_cli(*args, cwd=project_dir, env=cli_env())
    second = run_cli(*args, cwd=project_dir, env=cli_env())
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_render_unknown_type_is_one_line_error(project_dir):
    cfg = ready_project(project_dir)
    result = run_cli("render", str(cfg), "--type", "no_such_type", cwd=project_dir, env=cli_env())
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--type" in result.stderr and "no_such_type" in result.stderr and "code_explanation" in result.stderr


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{% include "../../etc/passwd" %}', "not found in the template folders"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ context.__class__.__init__.__globals__ }}", "unsafe"),
    ],
)
def test_template_escapes_are_refused_at_load(project_dir, line, says):
    cfg = ready_project(project_dir)
    template = project_dir / "templates" / "generate.md.j2"
    lines = template.read_text().splitlines()
    lines.insert(2, line)  # becomes line 3
    template.write_text("\n".join(lines) + "\n")
    result = run_cli("validate", str(cfg), cwd=project_dir, env=cli_env())
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in result.stderr
    assert says in err
    assert f"{template}:3" in err
    assert "root:" not in result.stdout + err  # nothing of /etc/passwd leaked


def test_undefined_variable_names_template_file_and_line(project_dir):
    cfg = ready_project(project_dir)
    template = project_dir / "templates" / "system.md.j2"
    text = template.read_text().splitlines()
    text.insert(4, "Level: {{ complexity_levle }}")
    template.write_text("\n".join(text) + "\n")
    error = load_error(cfg)
    assert error.file == str(template) and error.line == 5
    assert "complexity_levle" in str(error) and "undefined" in str(error)


def test_per_type_template_override_is_used(project_dir):
    cfg = ready_project(project_dir)
    (project_dir / "templates" / "short.md.j2").write_text("Only {{ count }} about {{ example_type.name }}, please.\n")
    types_file = project_dir / "configs" / "types" / "code_explanation.yaml"
    types_file.write_text(types_file.read_text() + "generate_template: short.md.j2\n")
    result = run_cli("render", str(cfg), "--type", "code_explanation", cwd=project_dir, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert "about code_explanation, please." in _split(result.stdout)[2]


def test_judge_prompt_carries_findings_and_the_real_declarations_of_what_the_candidate_uses(ready_loaded_project):
    from ootgen.plan import judge_vars
    from ootgen.records import Example

    project = ready_loaded_project
    code = ("void EnMine_Update(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n"
            "    if (this->actor.xzDistToPlayer < 50.0f) {\n        this->actor.flags |= ACTOR_FLAG_TALK;\n"
            "        Actor_SetScale(&this->actor, 0.01f, 2);\n        Actor_Explode(&this->actor);\n    }\n}\n")
    example = Example("Explain my actor's update.", "It checks the distance ...", code, "code_explanation", "actor flags")
    finding = {"code": "WRONG_ARG_COUNT", "severity": "warning", "message": "Actor_SetScale takes 2 arguments, 3 given",
               "location": "input:5"}
    prompt = project.renderer.judge_prompt(judge_vars([(example, "beginner")], project, "actor_system", structured=True,
                                                      findings=[[finding]]))
    candidate = prompt.user.split("<candidate index=\"1\">", 1)[1]
    assert "- warning WRONG_ARG_COUNT (input:5): Actor_SetScale takes 2 arguments, 3 given" in candidate.split("<static_findings>", 1)[1]
    facts = prompt.user.split("<decomp_facts>", 1)[1].split("</decomp_facts>", 1)[0]
    assert "void Actor_SetScale(Actor* actor, f32 scale);  // include/actor.h" in facts
    assert "f32 xzDistToPlayer @0x090" in facts and "u32 flags @0x004" in facts  # the fields it touches, debug offsets
    assert "ACTOR_FLAG_TALK = 256 (0x100, #define)" in facts
    assert "Actor_Explode" not in facts  # an invented name has no declaration to show
    assert "strict" in prompt.instructions and "you write training data" not in (prompt.system + prompt.instructions).lower()


def test_judge_prompt_states_each_types_requirements_and_each_declaration_once(ready_loaded_project):
    """Candidates of one call share a type's required parts and the declarations they use: the prompt (billed per
    call) carries each once, and a struct lists the fields any of them names."""
    from ootgen.plan import judge_vars
    from ootgen.records import Example

    project = ready_loaded_project
    first = ("void EnMine_Update(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n"
             "    if (this->actor.xzDistToPlayer < 50.0f) {\n        Actor_SetScale(&this->actor, 0.01f);\n    }\n}\n")
    second = ("void EnRock_Update(Actor* thisx, PlayState* play) {\n    EnRock* this = (EnRock*)thisx;\n"
              "    this->actor.gravity = -1.0f;\n    Actor_SetScale(&this->actor, 0.02f);\n}\n")
    candidates = [(Example("Explain my actor's update.", "It scales the actor.", code, "code_explanation", "actor flags"),
                   "beginner") for code in (first, second)]
    prompt = project.renderer.judge_prompt(judge_vars(candidates, project, "actor_system", structured=True))
    lines = prompt.user.splitlines()
    must = project.types["code_explanation"].answer_must
    assert prompt.user.count('<requirements type="code_explanation">') == 1
    assert all(lines.count(f"- {item}") == 1 for item in must)
    assert lines.count("void Actor_SetScale(Actor* actor, f32 scale);  // include/actor.h") == 1
    actor = [line for line in lines if line.startswith("struct Actor ")]
    assert len(actor) == 1 and "f32 xzDistToPlayer @0x090" in actor[0] and "f32 gravity @0x06C" in actor[0]
    assert prompt.user.count("<candidate index=") == 2


def test_another_types_first_call_on_a_warm_context_writes_only_that_types_instructions(ready_loaded_project):
    """Generation prompts are [context][rules every type shares][the type's instructions], each block a cache
    breakpoint: on a context already written, another type's first call reads the context and the rules and writes
    only its own instructions (as the fake bills it, the way the API does)."""
    import anthropic

    from ootgen.generate import build_request
    from ootgen.plan import sample_generation_vars
    from tests.fake_anthropic.server import FakeAnthropic, estimate_tokens

    project = ready_loaded_project
    context = project.contexts["actor_system"]
    types = [t for t in project.types.values() if "actor_system" in t.contexts][:2]
    assert len(types) == 2, "setup: two types on one context"
    model = project.models.resolve(project.config.model)
    prompts = [project.renderer.generation_prompt(sample_generation_vars(t, context, structured=model.structured))
               for t in types]
    first, second = prompts
    assert first.rules and first.system == second.system and first.rules == second.rules
    assert first.instructions != second.instructions
    assert not any(f'"{t.name}"' in first.rules for t in types)  # nothing type-specific in the shared block
    with FakeAnthropic(api_key="test-key", cache_min_tokens=1024) as fake:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="test-key", max_retries=0)
        usage = []
        for prompt in prompts:
            params = build_request("generate", model, prompt, max_tokens=2000, schema_name="generation_reply",
                                   effort=None, temperature=None).api_params()
            assert [(b["text"], b["cache_control"]) for b in params["system"]] == [
                (text, {"type": "ephemeral"}) for text in (prompt.system, prompt.rules, prompt.instructions)]
            usage.append(client.messages.create(**params).usage)
    shared = estimate_tokens(len(first.system) + len(first.rules))
    assert usage[0].cache_read_input_tokens == 0
    assert usage[1].cache_read_input_tokens == shared
    whole = estimate_tokens(len(second.system) + len(second.rules) + len(second.instructions))
    assert usage[1].cache_creation_input_tokens == whole - shared


def test_a_rules_template_that_renders_nothing_sends_no_rules_block(project_dir):
    """A preset whose own generate_system holds every rule points generate_rules at an empty file: two system
    blocks go out, no blank one (the API refuses a text block of whitespace)."""
    from ootgen.generate import build_request
    from ootgen.plan import generation_vars, iter_plan

    (project_dir / "templates" / "no_rules.md.j2").write_text("{# this preset keeps its rules elsewhere #}\n")
    project = load_project(ready_project(project_dir), ["templates.generate_rules=no_rules.md.j2"])
    model = project.models.resolve(project.config.model)
    task = next(iter(iter_plan(project)))
    prompt = project.renderer.generation_prompt(generation_vars(task, project, structured=model.structured))
    assert prompt.rules == ""
    params = build_request("generate", model, prompt, max_tokens=2000, schema_name="generation_reply", effort=None,
                           temperature=None).api_params()
    assert [b["text"] for b in params["system"]] == [prompt.system, prompt.instructions]
