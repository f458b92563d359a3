"""``python -m resdex_sb3.objects build|list|import|show``: the command-line face of ``envs.objects``.

The data directory is ``--data-dir``, else ``$RESDEX_DATA``, else ``data/`` in the checkout (git ignores it).

Examples::

    python -m resdex_sb3.objects list                      # the embedded set's splits and categories
    python -m resdex_sb3.objects list --json               # one JSON array: id, set, split, category, ...
    python -m resdex_sb3.objects build --preset default    # surface points + validated grasp proposals
    python -m resdex_sb3.objects import ~/meshes --name mine
    python -m resdex_sb3.objects import ~/DexGraspNet --name dgn --format dexgraspnet
    python -m resdex_sb3.objects show mug-000 --image mug.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


import envs  # noqa: F401  (headless GL default)
from envs.objects.build import build_object_set, import_object_set
from envs.objects.catalog import (DEFAULT_SET, SPLITS, ObjectSetNotBuilt, available_sets, describe_object_set,
                                  load_object_set)
from envs.objects.embedded import PRESET_OF_SET, PRESETS, SET_OF_PRESET, embedded_objects
from envs.objects.progress import log_line, progress_bars
from envs.objects.spec import ObjectSpec, object_bounds
from envs.objects.store import ObjectStore
from resdex_sb3.errors import cli_main


def _size(obj: ObjectSpec) -> list[float]:
    low, high = object_bounds(obj)
    return [round(float(v), 4) for v in high - low]


def _rounded(values: Any, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def cmd_list(args: argparse.Namespace) -> int:
    names = [args.set] if args.set else [DEFAULT_SET] + [s for s in available_sets(args.data_dir)
                                                         if s not in SET_OF_PRESET.values()]  # fmt: skip
    rows: list[dict[str, Any]] = []
    checksums: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name in names:
        try:
            objset, built = describe_object_set(name, args.data_dir)
        except ObjectSetNotBuilt as err:
            if args.set:
                raise
            problems[name] = str(err)  # one unusable set (an import under way, say) must not hide the others
            continue
        if built:
            checksums[name] = objset.checksum
        for obj in objset.objects:
            if args.split and obj.split != args.split:
                continue
            rows.append({"id": obj.name, "set": name, "split": obj.split, "category": obj.category,
                         "parts": len(obj.parts), "size_m": _size(obj), "built": built,
                         "proposals": len(objset.proposals.get(obj.name, []))})  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return 0
    for name in names:
        if name in problems:
            print(f"set {name}: not usable ({problems[name]})")
            continue
        set_rows = [r for r in rows if r["set"] == name]
        state = f"checksum {checksums[name]}" if name in checksums else "not built yet: `build` adds points, proposals"
        print(f"set {name}: {len(set_rows)} objects ({state})")
        for split in SPLITS:
            cats = Counter(r["category"] for r in set_rows if r["split"] == split)
            if cats:
                listed = ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
                print(f"  {split:<10} {sum(cats.values()):>5} objects, {len(cats):>2} categories: {listed}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    name = SET_OF_PRESET[args.preset]
    summary = build_object_set(name, args.data_dir, progress_bars(), seed=args.seed, proposals=not args.no_proposals)
    summary["checksum"] = load_object_set(name, args.data_dir).checksum
    print(json.dumps(summary, indent=1))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    summary = import_object_set(args.directory, args.name, args.data_dir, fmt=args.format, max_parts=args.max_parts,
                                scale=args.scale, limit=args.limit, proposals=not args.no_proposals,
                                progress=progress_bars(), log=log_line)  # fmt: skip
    summary["checksum"] = load_object_set(args.name, args.data_dir).checksum
    print(json.dumps(summary, indent=1))
    return 0


def find_object(object_id: str, set_name: str | None, data_dir: str | None) -> str:
    """The set that holds ``object_id``: ``set_name`` when given, else the one set that lists it (any id that
    ``list --json`` prints, e.g. ``holdout/mug`` or ``core/mug-1a2b@0.06``), preferring ``embedded``.

    Raises ``KeyError`` naming the candidates when no set or several sets hold the id.

    :param object_id: the object's id.
    :param set_name: the set given with ``--set``, or ``None``.
    :param data_dir: the data directory.
    """
    if set_name is not None:
        return set_name
    store = ObjectStore(data_dir)
    holders = [s for s in store.set_names() if object_id in store.set_info(s)["objects"]]
    if DEFAULT_SET in holders or len(holders) == 1:
        return DEFAULT_SET if DEFAULT_SET in holders else holders[0]
    if holders:
        raise KeyError(f"object {object_id!r} is in several sets ({', '.join(holders)}); pass --set")
    unbuilt = sorted(set(PRESET_OF_SET) - set(store.set_names()), key=lambda s: s != DEFAULT_SET)  # default first
    for name in unbuilt:  # embedded presets not built yet still have their objects
        if any(o.name == object_id for o in embedded_objects(PRESET_OF_SET[name])):
            return name
    raise KeyError(f"no object set in {store.root} holds {object_id!r}; `list --json` prints the ids")


def cmd_show(args: argparse.Namespace) -> int:
    objset, built = describe_object_set(find_object(args.id, args.set, args.data_dir), args.data_dir)
    obj = objset.by_name(args.id)
    from envs.scene import Scene

    scene = Scene(objset.scene_config)
    model = scene.object_model(obj)
    mass = float(model.body("object").mass[0])
    print(f"{obj.name}  set={objset.name}  split={obj.split}  category={obj.category}")
    print(f"set {objset.name}: " + (f"checksum {objset.checksum}" if built else "not built yet (no proposals)"))
    print(f"size (x, y, z) = {_size(obj)} m   mass = {mass * 1000:.1f} g   density = {obj.density} kg/m^3")
    for i, part in enumerate(obj.parts):
        detail = f"{len(part.vertices)} vertices" if part.kind == "hull" else f"size={_rounded(part.size, 4)}"
        print(f"  part {i}: {part.kind:<9} {detail}  pos={_rounded(part.pos, 4)}  quat={_rounded(part.quat, 3)}")
    proposals = objset.proposals.get(obj.name, [])
    print(f"grasp proposals: {len(proposals)} (validated in simulation)"
          + (f"; best lift {objset.report.get('best_lift', {}).get(obj.name)} m" if proposals else ""))  # fmt: skip
    for k, p in enumerate(proposals[: args.max_proposals]):
        print(f"  {k}: hand_point={_rounded(p.hand_point, 3)} palm_quat={_rounded(p.palm_quat, 3)}")
    image = Path(args.image or f"runs/objects/{obj.name.replace('/', '_')}.png")
    _render(scene, model, obj, image)
    return 0


def _render(scene: Any, model: Any, obj: ObjectSpec, path: Path) -> None:
    import mujoco

    from envs.render import FrameRenderer, RenderUnavailableError

    data = mujoco.MjData(model)
    lay = scene.layout
    data.qpos[lay.object_qpos + 2] = scene.config.table_height + scene.rest_height(obj)
    mujoco.mj_forward(model, data)
    camera = mujoco.MjvCamera()
    camera.lookat[:] = data.qpos[lay.object_qpos : lay.object_qpos + 3]
    camera.distance, camera.azimuth, camera.elevation = 0.55, 135.0, -30.0
    renderer = FrameRenderer()
    try:
        frame = renderer.render(model, data, camera)
    except RenderUnavailableError as err:
        print(f"(no image: {err})")
        return
    finally:
        renderer.close()
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path)
    print(f"image: {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.objects", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=None, help="data directory (default: $RESDEX_DATA, else ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", parents=[common], help="objects per set, split and category")
    p.add_argument("--set", default=None, help="only this set")
    p.add_argument("--split", choices=SPLITS, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON array of objects")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("build", parents=[common], help="build an embedded preset (points + grasp proposals)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--no-proposals", action="store_true", help="skip the grasp-proposal sampling")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("import", parents=[common], help="import a mesh folder or a DexGraspNet tree")
    p.add_argument("directory")
    p.add_argument("--name", required=True, help="name of the new object set")
    p.add_argument("--format", choices=("auto", "meshes", "dexgraspnet"), default="auto")
    p.add_argument("--max-parts", type=int, default=8, help="convex pieces per object (CoACD merges beyond)")
    p.add_argument("--scale", type=float, default=1.0, help="factor from mesh units to metres")
    p.add_argument("--limit", type=int, default=None, help="DexGraspNet: import at most this many objects")
    p.add_argument("--no-proposals", action="store_true", help="skip the grasp-proposal sampling")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("show", parents=[common], help="print an object's parts, size, mass and proposals; render it")
    p.add_argument("id", help="an object id as `list --json` prints it")
    p.add_argument("--set", default=None, help="the set holding the id (default: the set that lists it)")
    p.add_argument("--image", default=None, help="image path (default runs/objects/<id>.png)")
    p.add_argument("--max-proposals", type=int, default=3)
    p.set_defaults(func=cmd_show)
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
