"""Stand-ins for the headers a decomp checkout generates from the user's ROM, so answers compile without one.

Each `<File>` of `assets/xml/**.xml` becomes `assets/<folder>/<xml name>/<File name>.h` holding an `extern` of the
C type the decomp's extractor gives each resource kind (DList → `Gfx x[]`, Skeleton → `SkeletonHeader x`, ...).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

# resource kind → C declaration; "{}" is the symbol
_KINDS = {
    "DList": "Gfx {}[]",
    "Texture": "u64 {}[]",
    "Animation": "AnimationHeader {}",
    "PlayerAnimation": "LinkAnimationHeader {}",
    "PlayerAnimationData": "s16 {}[]",
    "CurveAnimation": "CurveAnimationHeader {}",
    "LegacyAnimation": "LegacyAnimationHeader {}",
    "Collision": "CollisionHeader {}",
    "Cutscene": "CutsceneData {}[]",
    "Blob": "u8 {}[]",
    "Mtx": "Mtx {}",
    "Scene": "SceneCmd {}[]",
    "Room": "SceneCmd {}[]",
    "Path": "Path {}[]",
    "LimbTable": "void* {}[]",
}
_SKELETONS = {"Flex": "FlexSkeletonHeader {}", "Curve": "CurveSkeletonHeader {}"}
_LIMBS = {"Standard": "StandardLimb {}", "LOD": "LodLimb {}", "Skin": "SkinLimb {}", "Curve": "SkelCurveLimb {}",
          "Legacy": "LegacyLimb {}"}
_ARRAY_ITEMS = {"Vtx": "Vtx", ("Vector", "s16", "3"): "Vec3s", ("Vector", "f32", "3"): "Vec3f",
                ("Vector", "s32", "3"): "Vec3i"}
# headers that declare the types above, included when the checkout has them
TYPE_HEADERS = ("ultra64.h", "animation.h", "animation_legacy.h", "curve.h", "skin.h", "bgcheck.h", "cutscene.h",
                "scene.h", "room.h", "path.h")


def _declaration(element: ET.Element) -> str | None:
    kind, attrs = element.tag, element.attrib
    if kind == "Skeleton":
        return _SKELETONS.get(attrs.get("Type", ""), "SkeletonHeader {}")
    if kind == "Limb":
        return _LIMBS.get(attrs.get("LimbType", ""), "StandardLimb {}")
    if kind == "Array":
        child = next(iter(element), None)
        if child is None:
            return "u8 {}[]"
        if child.tag == "Scalar":
            return child.attrib.get("Type", "u8") + " {}[]"
        key = child.tag if child.tag == "Vtx" else (child.tag, child.attrib.get("Type", ""),
                                                    child.attrib.get("Dimensions", ""))
        return _ARRAY_ITEMS.get(key, "u8") + " {}[]"
    return _KINDS.get(kind)


def _limb_enums(file_el: ET.Element, known: frozenset[str]) -> list[str]:
    """Limb enums the extractor writes for skeletons whose XML names them (EnumName/LimbNone/LimbMax)."""
    out = []
    limbs = [e.attrib["EnumName"] for e in file_el.iter("Limb") if "EnumName" in e.attrib]
    for skel in file_el.iter("Skeleton"):
        name, none, last = (skel.attrib.get(k) for k in ("EnumName", "LimbNone", "LimbMax"))
        if not (name and none and last) or name in known or none in known:
            continue
        prefix = none.rsplit("_", 1)[0] + "_"
        members = [none, *(m for m in limbs if m.startswith(prefix) and m not in known), last]
        out.append(f"typedef enum {name} {{ {', '.join(members)} }} {name};")
    return out


def write_asset_headers(checkout: Path, out_dir: Path, known: frozenset[str]) -> dict[str, str]:
    """Write one stand-in header per `<File>` of the checkout's assets/xml; returns symbol → header (its include
    path) for every symbol declared.

    `known` names are already declared by the decomp's own headers: they are not declared again."""
    xml_root = checkout / "assets" / "xml"
    includes = "".join(f'#include "{h}"\n' for h in TYPE_HEADERS if (checkout / "include" / h).is_file())
    declared: dict[str, str] = {}
    for xml in sorted(xml_root.rglob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except (ET.ParseError, OSError):
            continue
        rel = xml.relative_to(xml_root).with_suffix("")
        for file_el in root.iter("File"):
            file_name = file_el.attrib.get("Name")
            if not file_name:
                continue
            lines = _limb_enums(file_el, known)
            for element in file_el.iter():
                symbol = element.attrib.get("Name")
                decl = _declaration(element) if symbol and element is not file_el else None
                if symbol is None or decl is None or symbol in known:
                    continue
                lines.append("extern " + decl.format(symbol) + ";")
                declared.setdefault(symbol, f"assets/{rel.as_posix()}/{file_name}.h")
                if element.tag == "Texture" and "Width" in element.attrib:
                    lines.append(f"#define {symbol}_WIDTH {element.attrib['Width']}")
                    lines.append(f"#define {symbol}_HEIGHT {element.attrib.get('Height', '1')}")
            guard = "OOTGEN_STUB_" + "".join(c if c.isalnum() else "_" for c in str(rel / file_name)).upper()
            text = f"#ifndef {guard}\n#define {guard}\n{includes}" + "\n".join(lines) + "\n#endif\n"
            # an object's symbols come in a header; an overlay's are in a .c its actor file includes
            for suffix in (".h", ".c") if rel.parts[0] == "overlays" else (".h",):
                path = out_dir / "assets" / rel / f"{file_name}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    return declared
