"""Hard limits on what a preset may make ootgen read or compute: file sizes, YAML nodes, template bounds.

They are not config keys on purpose: a shared preset must not be able to raise the limits that protect the
person running it. README ("Limits a preset must stay under") lists the same table; tests/test_limits.py
checks that the two agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    # Input files, refused before they are parsed.
    yaml_file_bytes: int = 2 * MIB  # presets, example types, checks.yaml, models.yaml
    context_file_bytes: int = 512 * KIB  # one knowledge context (front matter + Markdown)
    template_file_bytes: int = 256 * KIB  # one Jinja2 template or included/imported file
    questions_file_bytes: int = 8 * MIB  # --questions / `questions:` (txt, JSONL, CSV)
    question_chars: int = 4000  # one community question
    symbols_file_bytes: int = 64 * MIB  # a symbol index as stored (gzip)
    symbols_json_bytes: int = 128 * MIB  # the same index decompressed (streamed, stopped at the cap)
    check_row_bytes: int = 4 * MIB  # one JSONL row read by `ootgen check`
    source_file_bytes: int = 4 * MIB  # one decomp source file read for grounding
    # YAML structure.
    yaml_nodes: int = 100_000  # scalars, mappings, sequences and aliases as written
    yaml_expanded_nodes: int = 200_000  # nodes once every alias is expanded (an "alias bomb")
    # Templates (checked while rendering, inside the sandbox).
    template_string_chars: int = 1_000_000  # longest string an operation or filter may build
    template_sequence_items: int = 100_000  # longest list or tuple an operation or filter may build
    template_int_bits: int = 4096  # largest integer (in bits) arithmetic may produce (~1233 digits)
    template_loop_steps: int = 1_000_000  # range() items iterated in one render, summed over all loops
    template_output_chars: int = 4_000_000  # characters one rendered prompt may have

    def as_table(self) -> dict[str, int]:
        return asdict(self)


LIMITS = Limits()
