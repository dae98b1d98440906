"""ootgen.sandbox: templates compile without constant folding, ordinary operations behave as in Jinja2, and the
limits of ootgen.limits stop the ones that would hang or fill memory (the CLI side is in test_bad_input)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from ootgen.errors import ConfigError
from ootgen.limits import LIMITS
from ootgen.sandbox import BoundedEnvironment, TemplateLimitExceeded

ORDINARY = (
    "{{ 2 ** 10 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ 3 - 5 }} {{ 'ab' ~ 'c' ~ 1 }} {{ 'x' * 3 }} {{ [1, 2] + [3] }}"
    " {{ '%3d|%-4s|' % (5, 'a') }} {{ '{:>4}'.format(7) }} {{ 'a b'|replace(' ', '-') }} {{ ['a', 'b']|join(', ') }}"
    " {{ 'hi'|center(6) }}|{{ 'x\ny'|indent(2) }} {% for i in range(3) %}{{ i }}{% endfor %}"
    " {% set block %}{{ 'in' }}{% endset %}{{ block }} {{ range(5)|batch(2)|list }}"
)


def test_ordinary_operations_render_as_in_plain_jinja(tmp_path):
    bounded = BoundedEnvironment([tmp_path]).from_string(ORDINARY).render()
    plain = jinja2.Environment().from_string(ORDINARY).render()
    assert bounded == plain


@pytest.mark.parametrize("source", ["{{ 10 ** 100000000 }}", "{{ 'x' * 3000000000 }}", "{{ 'x'|center(1000000000) }}"])
def test_constant_expressions_are_not_evaluated_at_compile_time(tmp_path, source):
    template = BoundedEnvironment([tmp_path]).from_string(source)  # plain Jinja2 folds these here and hangs or fills memory
    with pytest.raises(TemplateLimitExceeded):
        template.render()


def test_limits_are_exact_at_the_boundary(tmp_path):
    env = BoundedEnvironment([tmp_path])
    limit = LIMITS.template_string_chars
    assert len(env.from_string("{{ 'x' * n }}").render(n=limit)) == limit
    with pytest.raises(TemplateLimitExceeded, match=str(limit + 1)):
        env.from_string("{{ 'x' * n }}").render(n=limit + 1)


def test_loop_budget_is_per_render(tmp_path):
    template = BoundedEnvironment([tmp_path]).from_string("{% for i in range(n) %}{% for j in range(m) %}{% endfor %}{% endfor %}ok")
    n, m = 1000, LIMITS.template_loop_steps // 1000 - 1  # n + n*m steps: just under the budget
    for _ in range(3):  # each render gets the whole budget again
        assert template.render(n=n, m=m) == "ok"
    with pytest.raises(TemplateLimitExceeded, match="loops ran more than"):
        template.render(n=n, m=m + 2)


def test_symlink_inside_the_folder_is_allowed_and_one_leaving_it_is_refused(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "real.j2").write_text("real {{ 1 + 1 }}")
    (folder / "alias.j2").symlink_to(folder / "real.j2")
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "leak.j2").symlink_to(tmp_path / "secret.txt")
    env = BoundedEnvironment([folder])
    assert env.from_string("{% include 'alias.j2' %}").render() == "real 2"
    with pytest.raises(ConfigError) as error:
        env.from_string("{% include 'leak.j2' %}").render()
    assert "leak.j2" in str(error.value) and "symlink" in str(error.value) and "secret.txt" in str(error.value)
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("../secret.txt")


def test_digest_reads_each_file_of_the_folder(tmp_path: Path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a.j2").write_text("a")
    env = BoundedEnvironment([folder])
    first = env.confined_loader.digest()
    (folder / "a.j2").write_text("b")
    assert env.confined_loader.digest() != first
