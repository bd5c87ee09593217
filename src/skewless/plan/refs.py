"""Feature references as users write them, resolved against the registry: one parser for the
SDK's training and serving paths, the feature server and the CLI.

A request is a list of ``"view:feature"`` / ``"view:*"`` references, a ``FeatureService`` or a
service's name. ``parse_refs`` turns it into views with their features in request order;
``output_names`` gives each feature its result column (``feature``, or ``view__feature`` with
full feature names). Errors name the culprit and the closest known names.
"""

from __future__ import annotations

from collections.abc import Sequence

from skewless.define import FeatureService, FeatureView
from skewless.errors import InvalidRequestError, UnknownObjectError, closest
from skewless.registry.snapshot import Snapshot


def output_names(groups: Sequence[tuple[FeatureView, list[str]]], full_feature_names: bool
                 ) -> list[list[str]]:
    """The result column of each requested feature: ``feature`` or ``view__feature``. The same
    name from two views without full names is an error saying how to fix it."""
    owner: dict[str, str] = {}
    out = []
    for view, feats in groups:
        names = []
        for f in feats:
            name = f"{view.name}__{f}" if full_feature_names else f
            if name in owner:
                raise InvalidRequestError(
                    f"feature name '{name}' is requested from both '{owner[name]}' and '{view.name}'",
                    hint="pass full_feature_names=True to get 'view__feature' column names")
            owner[name] = view.name
            names.append(name)
        out.append(names)
    return out


def parse_refs(snapshot: Snapshot, features: Sequence[str] | FeatureService | str
               ) -> list[tuple[FeatureView, list[str]]]:
    """Feature references (``"view:feature"``, ``"view:*"``) or a service -> views with features,
    in request order. Unknown names are errors suggesting the closest ones."""
    if isinstance(features, str):
        if ":" not in features:  # a feature service name
            features = snapshot.get("feature_service", features)
        else:
            features = [features]
    groups: dict[str, list[str]] = {}
    if isinstance(features, FeatureService):
        for p in features.projections:
            view = snapshot.get("feature_view", p.view_name)
            feats = p.features if p.features is not None else [
                f.name for f in view.served_features(set(snapshot.join_keys(view)))]
            groups.setdefault(view.name, []).extend(feats)
    else:
        if not features:
            raise InvalidRequestError("no features requested",
                                      hint='pass features=["view:feature", ...] or a feature service')
        for ref in features:
            if not isinstance(ref, str) or ref.count(":") != 1:
                raise InvalidRequestError(f"feature reference {ref!r} is not of the form 'view:feature'")
            vname, fname = ref.split(":")
            if vname not in snapshot.feature_views:
                raise UnknownObjectError(
                    f"unknown feature view '{vname}' in '{ref}'; {closest(vname, snapshot.feature_views)}",
                    hint="run `skewless ls` to list views")
            view = snapshot.feature_views[vname]
            names = [f.name for f in view.served_features(set(snapshot.join_keys(view)))]
            if fname == "*":
                groups.setdefault(vname, []).extend(names)
                continue
            if fname not in names:
                raise UnknownObjectError(
                    f"feature view '{vname}' has no feature '{fname}'; {closest(fname, names)}",
                    hint=f"run `skewless describe {vname}` to list its features")
            groups.setdefault(vname, []).append(fname)
    out = []
    for vname, feats in groups.items():
        seen: list[str] = []
        for f in feats:
            if f not in seen:
                seen.append(f)
        out.append((snapshot.feature_views[vname], seen))
    return out
