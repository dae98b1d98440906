"""The decomp symbol index that static L1 checks look names up in (functions, structs, enums, renames).

Stored as deterministic gzip JSON (see ootgen.index for how it is built); loading keeps the raw tables and
builds small record objects only on lookup, so `SymbolIndex.load("default")` stays fast.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

FORMAT_VERSION = 1

_TYPE_NOISE = re.compile(r"\b(?:const|volatile|struct|union|enum|unsigned|signed)\b|\[[^\]]*\]|\*")


@dataclass(frozen=True)
class FunctionSignature:
    name: str
    return_type: str
    params: tuple[tuple[str, str], ...]
    arity: int
    variadic: bool
    kind: str  # "prototype" or "definition"
    file: str
    line: int
    end_line: int | None = None


@dataclass(frozen=True)
class StructField:
    name: str
    type: str
    offset: str | None = None


@dataclass(frozen=True)
class Actor:
    id: int
    enum: str
    profile: str | None
    overlay: str | None


_BASE_TYPE_CACHE: dict[str, str] = {}


def base_type_name(type_text: str) -> str:
    """`struct Actor*`, `const Vec3f[4]` -> `Actor`, `Vec3f`: the bare type name a field or variable has."""
    name = _BASE_TYPE_CACHE.get(type_text)
    if name is None:
        name = " ".join(_TYPE_NOISE.sub(" ", type_text).split())
        if len(_BASE_TYPE_CACHE) >= 8192:
            _BASE_TYPE_CACHE.clear()
        _BASE_TYPE_CACHE[type_text] = name
    return name


_SUGGEST_SHORTLIST = 40
_LOADED: dict[tuple, SymbolIndex] = {}  # (path, mtime, size) -> index, see SymbolIndex.load


@functools.lru_cache(maxsize=65536)
def _bigrams(name: str) -> frozenset[str]:
    lowered = name.lower()
    return frozenset(lowered[i : i + 2] for i in range(len(lowered) - 1))


class SymbolIndex:
    """Read-only tables of decomp names. Build with ootgen.index, then `save`/`load`."""

    __slots__ = (
        "_actors",
        "_asset_files",
        "_asset_owner",
        "_by_initial",
        "_defines",
        "_derived",
        "_enums",
        "_field_maps",
        "_functions",
        "_globals",
        "_header_names",
        "_headers",
        "_local_macros",
        "_macros",
        "_module_prefixes",
        "_param_cache",
        "_private_constants",
        "_renames",
        "_resolve_cache",
        "_structs",
        "_suggest_cache",
        "_symbol_names",
        "_typedefs",
        "provenance",
    )

    def __init__(self, data: dict) -> None:
        self._functions: dict[str, list] = data.get("functions", {})
        self._structs: dict[str, dict] = data.get("structs", {})
        self._typedefs: dict[str, str] = data.get("typedefs", {})
        self._enums: dict[str, int | None] = data.get("enums", {})
        self._defines: dict[str, int | None] = data.get("defines", {})
        macros = data.get("macros", ())
        # name -> [arities, variadic, local] of function-like macros (a bare name list in older indexes)
        self._macros: dict[str, list] = dict(macros) if isinstance(macros, dict) else {m: [None, 1, 0] for m in macros}
        self._local_macros: frozenset[str] = frozenset(data.get("local_macros", ()))
        self._private_constants: frozenset[str] = frozenset(data.get("private_constants", ()))
        self._headers: list[str] = data.get("headers", [])
        self._header_names: frozenset[str] | None = None
        self._asset_files: dict = data.get("assets", {})
        self._asset_owner: dict[str, tuple[str, str]] | None = None
        self._derived: dict[str, Any] = {}
        self._param_cache: dict[tuple[str, int], frozenset[str]] = {}
        self._globals: dict[str, str] = data.get("globals", {})
        self._actors: list = data.get("actors", [])
        renames = data.get("renames", {})
        self._renames: dict[str, dict[str, str]] = {k: renames.get(k, {}) for k in ("word", "substring", "path", "suffix")}
        self.provenance: dict = data.get("provenance", {})
        self._module_prefixes: frozenset[str] | None = None
        self._symbol_names: frozenset[str] | None = None
        self._suggest_cache: dict = {}
        self._field_maps: dict[str, dict[str, str]] = {}  # struct -> {field: type} (first declaration wins)
        self._resolve_cache: dict[str, str | None] = {}  # type text -> resolve_struct result
        self._by_initial: dict | None = None

    # -- persistence -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> SymbolIndex:
        """Read a gzip JSON index; "default" means the index shipped in ootgen/data."""
        if str(path) == "default":
            from .resources import default_symbol_index

            path = default_symbol_index()
        path = Path(path)
        try:
            stamp = path.stat()
        except FileNotFoundError:
            raise ConfigError("symbol index not found", file=str(path), expected="a .json.gz written by `ootgen index`") from None
        # The index is read-only: loading the same unchanged file again (validation, then the run, then the
        # planner's grounding) returns the object already built.
        key = (str(path.resolve()), stamp.st_mtime_ns, stamp.st_size)
        cached = _LOADED.get(key)
        if cached is not None:
            return cached
        try:
            data = json.loads(_read_gzip_capped(path, stamp.st_size))
        except FileNotFoundError:
            raise ConfigError("symbol index not found", file=str(path), expected="a .json.gz written by `ootgen index`") from None
        except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"unreadable symbol index: {error}", file=str(path), expected="gzip JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ConfigError("not a symbol index of this ootgen version", file=str(path), key="format",
                              expected=f"format {FORMAT_VERSION}")
        index = _LOADED[key] = cls(data)
        return index

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "provenance": self.provenance,
            "functions": self._functions,
            "structs": self._structs,
            "typedefs": self._typedefs,
            "enums": self._enums,
            "defines": self._defines,
            "macros": self._macros,
            "local_macros": sorted(self._local_macros),
            "private_constants": sorted(self._private_constants),
            "headers": self._headers,
            "assets": self._asset_files,
            "globals": self._globals,
            "actors": self._actors,
            "renames": self._renames,
        }

    def save(self, path: str | Path) -> None:
        """Deterministic bytes: sorted keys, no whitespace, gzip mtime 0 and no file name."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as fh:
            fh.write(payload)

    # -- lookups ------------------------------------------------------------------------------------------
    def function(self, name: str) -> list[FunctionSignature]:
        return [
            FunctionSignature(name, r[0], tuple((p[0], p[1]) for p in r[1]), r[2], bool(r[3]),
                              "definition" if r[4] == "d" else "prototype", r[5], r[6], r[7] if len(r) > 7 else None)
            for r in self._functions.get(name, ())
        ]

    def param_types(self, name: str, position: int) -> frozenset[str]:
        """The bare type names (base_type_name) the known signatures of `name` give parameter `position`."""
        key = (name, position)
        types = self._param_cache.get(key)
        if types is None:
            types = frozenset(base_type_name(r[1][position][0]) for r in self._functions.get(name, ()) if len(r[1]) > position)
            if len(self._param_cache) < 65536:
                self._param_cache[key] = types
        return types

    def module_prefixes(self) -> frozenset[str]:
        """`Actor`, `Math`, `SkelAnime`...: prefixes of engine functions (declared in include/ or defined in
        src/code/). A name with such a prefix is a claim about the engine, never a user's own helper."""
        if self._module_prefixes is None:
            self._module_prefixes = frozenset(
                name.split("_", 1)[0]
                for name, records in self._functions.items()
                if "_" in name and any(r[5].startswith(("include/", "src/code/")) for r in records)
            )
        return self._module_prefixes

    def definitions(self) -> list[FunctionSignature]:
        """Every function definition with a known line range, sorted by file and line (for grounding)."""
        found = [
            FunctionSignature(name, r[0], tuple((p[0], p[1]) for p in r[1]), r[2], bool(r[3]), "definition", r[5], r[6], r[7])
            for name, records in self._functions.items()
            for r in records
            if r[4] == "d" and len(r) > 7 and r[7]
        ]
        return sorted(found, key=lambda f: (f.file, f.line))

    def arities(self, name: str) -> tuple[set[int], bool] | None:
        """Every known arity of a function and whether any signature is variadic; None when unknown."""
        records = self._functions.get(name)
        if not records:
            return None
        return {r[2] for r in records}, any(r[3] for r in records)

    def has_function(self, name: str) -> bool:
        return name in self._functions

    def is_macro(self, name: str) -> bool:
        return name in self._macros or name in self._defines or name in self._local_macros

    def macro_arity(self, name: str) -> tuple[set[int], bool] | None:
        """Arity and variadic flag of a function-like macro; None when unknown (or not a function-like macro)."""
        record = self._macros.get(name)
        if record is None or not record[0]:
            return None
        return set(record[0]), bool(record[1])

    def is_local_macro(self, name: str) -> bool:
        """A macro of one decomp .c file (e.g. a field alias `#define vTimer actionVar1`)."""
        return name in self._local_macros

    def has_constant(self, name: str) -> bool:
        """An enum member, define or macro (object-like or function-like) or global of that name exists."""
        return (name in self._enums or name in self._defines or name in self._macros or name in self._local_macros
                or name in self._globals)

    def constant_names(self) -> Iterable[str]:
        """Every engine-wide enum member, define and function-like macro: not those of one .c file or of a header
        under src/ (an actor's own header)."""
        names = frozenset().union(self._enums, self._defines, (m for m, r in self._macros.items() if not r[2]))
        return names - self._private_constants

    # -- headers and assets ---------------------------------------------------------------------------------
    def has_headers(self) -> bool:
        return bool(self._headers)

    def has_header(self, path: str) -> bool:
        """Whether `#include "path"` names a decomp header: include/-relative, repository-relative, or an
        overlay's own header by file name."""
        if self._header_names is None:
            names = set()
            for h in self._headers:
                names.add(h)
                if h.startswith("include/"):
                    names.add(h[len("include/"):])
                if h.startswith("src/"):
                    names.add(h.rsplit("/", 1)[-1])
                    names.add(h[len("src/"):])
            self._header_names = frozenset(names)
        return path in self._header_names

    def has_assets(self) -> bool:
        return bool(self._asset_files.get("files"))

    def asset(self, symbol: str) -> tuple[str, str] | None:
        """(asset file, kind) that defines an asset symbol (first file wins), or None."""
        if self._asset_owner is None:
            owner: dict[str, tuple[str, str]] = {}
            for file_name, kinds in sorted(self._asset_files.get("files", {}).items()):
                for kind, names in kinds.items():
                    for n in names:
                        owner.setdefault(n, (file_name, kind))
            self._asset_owner = owner
        return self._asset_owner.get(symbol)

    def object_file(self, object_id: str) -> str | None:
        """OBJECT_BOX -> object_box."""
        return self._asset_files.get("objects", {}).get(object_id)

    def actor_object(self, profile: str) -> str | None:
        """En_Box_Profile -> OBJECT_BOX: the objectId a decomp actor's profile names."""
        return self._asset_files.get("actor_objects", {}).get(profile)

    def derived(self, key: str, build: Callable[[SymbolIndex], Any]) -> Any:
        """`build(self)`, computed once per index and kept with it: tables a later stage compiles from the index
        (e.g. rename matchers) live as long as the index, never in a module cache keyed by id()."""
        table = self._derived.get(key)
        if table is None:
            table = self._derived[key] = build(self)
        return table

    def has_symbol(self, name: str) -> bool:
        return name in self.symbol_names()

    def symbol_names(self) -> frozenset[str]:
        """Every known name (functions, structs, typedefs, enum constants, defines, macros, globals), built once."""
        if self._symbol_names is None:
            self._symbol_names = frozenset().union(self._functions, self._structs, self._typedefs, self._enums,
                                                   self._defines, self._macros, self._globals, self._local_macros)
        return self._symbol_names

    def is_open_struct(self, name: str) -> bool:
        """A struct with a member the index could not read (e.g. `SLIDING_DOOR_ACTOR_BASE;`): its field list is partial."""
        struct = self._structs.get(name)
        return bool(struct and struct.get("open"))

    def struct_fields(self, name: str) -> list[StructField] | None:
        struct = self._structs.get(self.resolve_struct(name) or "")
        if struct is None:
            return None
        return [StructField(f[0], f[1], f[2]) for f in struct["fields"]]

    def field_type(self, struct: str, field: str) -> str | None:
        """Type text of `struct.field` (anonymous members already flattened); None when absent."""
        fields = self._field_maps.get(struct)
        if fields is None:
            s = self._structs.get(struct)
            if s is None:
                return None
            fields = {}
            for f in s["fields"]:
                fields.setdefault(f[0], f[1])
            self._field_maps[struct] = fields
        return fields.get(field)

    def resolve_struct(self, type_text: str) -> str | None:
        """The struct/union name a type (possibly a typedef, pointer or array) refers to, if known."""
        cache = self._resolve_cache
        if type_text in cache:
            return cache[type_text]
        result = None
        name = base_type_name(type_text)
        for _ in range(8):
            if name in self._structs:
                result = name
                break
            target = self._typedefs.get(name)
            if target is None:
                break
            name = base_type_name(target)
        if len(cache) >= 8192:
            cache.clear()
        cache[type_text] = result
        return result

    def global_type(self, name: str) -> str | None:
        return self._globals.get(name)

    def enum_value(self, name: str) -> int | None:
        return self._enums.get(name)

    def define_value(self, name: str) -> int | None:
        return self._defines.get(name)

    def actors(self) -> list[Actor]:
        return [Actor(a[0], a[1], a[2], a[3]) for a in self._actors]

    def renames(self, kind: str = "word") -> dict[str, str]:
        """Old -> new: "word" (whole identifiers), "substring", "path" (e.g. actor.posRot.), "suffix"."""
        return self._renames[kind]

    def counts(self) -> dict[str, int]:
        return {
            "functions": len(self._functions),
            "structs": len(self._structs),
            "typedefs": len(self._typedefs),
            "enum_constants": len(self._enums),
            "defines": len(self._defines),
            "macros": len(self._macros),
            "local_macros": len(self._local_macros),
            "headers": len(self._headers),
            "asset_symbols": sum(len(n) for k in self._asset_files.get("files", {}).values() for n in k.values()),
            "globals": len(self._globals),
            "actors": len(self._actors),
            "renames": sum(len(v) for v in self._renames.values()),
        }

    # -- did you mean -------------------------------------------------------------------------------------
    def suggest(self, name: str, *, limit: int = 1, kinds: Iterable[str] | None = None) -> list[str]:
        """Close known names ("did you mean"): a rename first, then difflib over similar-looking names.

        Candidates share the name's `Prefix_` (or its first letter) and have a similar length, which keeps a
        lookup to a few milliseconds; results are memoised."""
        renamed = self._renames["word"].get(name)
        if renamed:
            return [renamed]
        key = (name, limit, tuple(kinds) if kinds is not None else None)
        cached = self._suggest_cache.get(key)
        if cached is not None:
            return list(cached)
        groups = self._groups(key[2])
        prefix = name.split("_", 1)[0] + "_" if "_" in name else None
        pool = groups.get(prefix, []) if prefix else []
        if not pool:
            pool = groups.get(name[:1].lower(), [])
        lo, hi = len(name) * 0.6, len(name) * 1.5 + 2
        candidates = [n for n in pool if lo <= len(n) <= hi]
        if len(candidates) > _SUGGEST_SHORTLIST:
            # difflib is slow over hundreds of names: shortlist by shared character pairs first (sorted() is
            # stable, so equal scores keep the pool's order and the result stays deterministic).
            grams = _bigrams(name)
            candidates = sorted(candidates, key=lambda n: -len(grams & _bigrams(n)))[:_SUGGEST_SHORTLIST]
        result = difflib.get_close_matches(name, candidates, n=limit, cutoff=0.6)
        if len(self._suggest_cache) < 4096:
            self._suggest_cache[key] = tuple(result)
        return result

    def _groups(self, kinds: tuple | None) -> dict[str, list[str]]:
        """Names bucketed by first letter and by `Prefix_`, per kind selection (built once)."""
        groups = self._by_initial.get(kinds) if self._by_initial is not None else None
        if groups is not None:
            return groups
        tables: dict[str, Iterable[str]] = {"functions": self._functions, "structs": self._structs, "globals": self._globals,
                  "enums": self._enums, "defines": self._defines, "typedefs": self._typedefs, "macros": self._macros}
        selected = kinds or ("functions", "structs", "typedefs", "globals", "macros")
        names = sorted({n for k in selected for n in tables[k]})
        groups = {}
        for n in names:
            groups.setdefault(n[:1].lower(), []).append(n)
            if "_" in n:
                groups.setdefault(n.split("_", 1)[0] + "_", []).append(n)
        if self._by_initial is None:
            self._by_initial = {}
        self._by_initial[kinds] = groups
        return groups


def _read_gzip_capped(path: Path, size: int) -> bytes:
    """The decompressed bytes of a gzip file, read in chunks and refused past the limit (a gzip of zeros
    expands ~1000x: it must fail at the cap, not after filling memory)."""
    from .limits import LIMITS

    if size > LIMITS.symbols_file_bytes:
        raise ConfigError(f"symbol index is {size} bytes, larger than the {LIMITS.symbols_file_bytes} allowed", file=str(path),
                          expected="a smaller file (see README, Limits)")
    chunks, total = [], 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > LIMITS.symbols_json_bytes:
                raise ConfigError(f"symbol index decompresses to more than {LIMITS.symbols_json_bytes} bytes", file=str(path),
                                  expected="a .json.gz written by `ootgen index` (see README, Limits)")
            chunks.append(chunk)
    return b"".join(chunks)
