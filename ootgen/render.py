"""Pipeline stage 3, render: Jinja2 templates -> the exact system and user prompts sent to Claude.

Templates run in ootgen.sandbox (a bounded SandboxedEnvironment, StrictUndefined) and load only from the configured folders.
The knowledge context is the first system block and carries cache_control, so tasks sharing a context
share a cached prompt prefix.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.sandbox import SecurityError

from .errors import ConfigError
from .sandbox import BoundedEnvironment, TemplateLimitExceeded
from .yamlfile import SourceMap


@dataclass(frozen=True)
class Prompt:
    """system: the knowledge context, shared by generation and judge calls (first cached block);
    rules: the fixed rules of a role shared by all its types (generation: a cached block between the context and
    the type's instructions, so a context's first call of each new type writes only the type's part; may be empty);
    instructions: the fixed instructions of a role and type (last cached system block, may be empty);
    user: what varies per call."""

    system: str
    user: str
    instructions: str = ""
    rules: str = ""


class PromptRenderer:
    def __init__(self, template_dirs: list[Path], names: dict, *, source: SourceMap | None = None):
        self.template_dirs = [Path(d) for d in template_dirs]
        self.names = dict(names)
        self._source = source or SourceMap()
        self.env = BoundedEnvironment(self.template_dirs, autoescape=False, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)
        self._templates: dict[str, jinja2.Template] = {}
        for role, name in self.names.items():
            self._templates[role] = self._load(name, ("templates", role))

    def _load(self, name: str, key: tuple, where: tuple | None = None) -> jinja2.Template:
        """`where` = (file, line, key) of the setting that names the template, when not in the run config."""
        file, line = self._source.locate(key)
        key_text = ".".join(str(k) for k in key)
        if where is not None:
            file, line, key_text = where
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(f"template syntax error: {error.message}", file=error.filename or name, line=error.lineno) from None
        except UnicodeDecodeError:
            found = next((d / name for d in self.template_dirs if (d / name).is_file()), name)
            raise ConfigError("template is not valid UTF-8 text", file=str(found), expected="a UTF-8 encoded file") from None
        except jinja2.TemplateNotFound as error:
            raise ConfigError(
                f"template '{error.name}' not found in the template folders",
                file=file,
                line=line,
                key=key_text,
                expected="a file inside " + ", ".join(str(d) for d in self.template_dirs) + " (paths may not leave them)",
            ) from None

    def template_for(self, role: str, override: str | None = None) -> jinja2.Template:
        if override:
            if override not in self._templates:
                self._templates[override] = self._load(override, ("templates", role))
            return self._templates[override]
        return self._templates[role]

    def render(self, role: str, variables: dict, *, override: str | None = None) -> str:
        template = self.template_for(role, override)
        try:
            return template.render(**variables).strip() + "\n"
        except ConfigError:
            raise  # an included file refused by the loader names itself
        except TemplateLimitExceeded as error:
            raise self._render_error(error, template, f"template operation refused: {error}") from None
        except SecurityError as error:
            raise self._render_error(error, template, "unsafe template operation refused by the sandboxed environment") from None
        except jinja2.UndefinedError as error:
            text = str(error)
            if "unsafe" in text:
                raise self._render_error(error, template, f"unsafe template operation refused: {text}") from None
            raise self._render_error(error, template, f"template uses an undefined variable: {text}") from None
        except jinja2.TemplateNotFound as error:
            raise self._render_error(
                error, template, f"included template '{error.name}' not found in the template folders (paths may not leave them)"
            ) from None
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(f"template syntax error: {error.message}", file=error.filename, line=error.lineno) from None
        except jinja2.TemplateError as error:
            raise self._render_error(error, template, f"template error: {error}") from None
        except Exception as error:  # {{ 1/0 }}, an over-large range(), a non-UTF-8 include: the template's fault
            raise self._render_error(error, template, f"template failed: {type(error).__name__}: {error}") from None

    def _render_error(self, error: BaseException, template: jinja2.Template, message: str) -> ConfigError:
        file, line = template.filename, None
        for frame, lineno in traceback.walk_tb(error.__traceback__):
            name = frame.f_code.co_filename
            if name and name.endswith((".j2", ".jinja", ".md", ".txt", ".html")):
                file, line = name, lineno
        return ConfigError(message, file=file, line=line)

    def digest(self) -> str:
        return self.env.confined_loader.digest()

    # Prompt builders -------------------------------------------------------------------------

    def system_prompt(self, context_vars: dict) -> str:
        return self.render("system", {"context": context_vars})

    def generation_prompt(self, variables: dict, override: str | None = None) -> Prompt:
        return Prompt(
            self.system_prompt(variables["context"]),
            self.render("generate", variables, override=override),
            self._instructions("generate_system", variables, ("example_type", "structured", "reply_schema")),
            self._instructions("generate_rules", variables, ("structured", "reply_schema")),
        )

    def judge_prompt(self, variables: dict) -> Prompt:
        return Prompt(
            self.system_prompt(variables["context"]),
            self.render("judge", variables),
            self._instructions("judge_system", variables, ("structured", "reply_schema")),
        )

    def _instructions(self, role: str, variables: dict, keys: tuple[str, ...]) -> str:
        """A role's fixed instructions see only variables that are the same across its calls, so they cache."""
        if role not in self._templates:
            return ""
        text = self.render(role, {key: variables[key] for key in keys})
        return text if text.strip() else ""  # a template that renders nothing sends no block (the API refuses blank text)

    def check_all(self, types: dict, contexts: dict, sample_generation_vars: Callable, sample_judge_vars: Callable) -> None:
        """Render every template once with sample variables so mistakes surface before money is spent.

        The sample builders come from the plan stage (passed in, so render does not import plan)."""
        from .yamlfile import load_yaml_file

        for example_type in types.values():
            override = example_type.generate_template
            if override and override not in self._templates:  # a missing one is the type file's mistake
                line = load_yaml_file(Path(example_type.file))[1].locate(("generate_template",))[1]
                where = (example_type.file, line, "generate_template")
                self._templates[override] = self._load(override, ("templates", "generate"), where=where)
            context = contexts[example_type.contexts[0]]
            for structured in (True, False):
                variables = sample_generation_vars(example_type, context, structured=structured)
                self.generation_prompt(variables, override=example_type.generate_template)
        first_type = next(iter(types.values()))
        for structured in (True, False):
            self.judge_prompt(sample_judge_vars(first_type, contexts[first_type.contexts[0]], structured=structured))
