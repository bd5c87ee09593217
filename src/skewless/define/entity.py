"""Entity: the thing features describe (a user, a merchant, a user x merchant pair)."""

from __future__ import annotations

from collections.abc import Sequence

from skewless.define._common import FrozenMixin, check_name, check_str, check_tags
from skewless.define._fields import BREAKING, IDENTITY, Spec, as_dict, as_list
from skewless.errors import DefinitionError


class Entity(FrozenMixin):
    """An entity and its join keys.

    ``join_keys`` defaults to ``[name]``. Several join keys make a composite entity, e.g.
    ``Entity("user_merchant", join_keys=["user_id", "merchant_id"])``.
    """

    name: str
    join_keys: tuple[str, ...]
    description: str
    owner: str
    tags: dict[str, str]

    KIND = "entity"
    FIELDS = (
        Spec("name", diff=IDENTITY, ls=(0, "name")),
        Spec("join_keys", dump=as_list, diff=BREAKING, label="join keys",
             describe=(0, "join keys"), ls=(1, "join keys")),
        Spec("description", describe=(1, "description"), ls=(2, "description")),
        Spec("owner", describe=(2, "owner"), ls=(3, "owner")),
        Spec("tags", dump=as_dict, describe=(3, "tags"), ls=(4, "tags")),
    )

    def __init__(
        self,
        name: str,
        join_keys: Sequence[str] | None = None,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self._set("name", check_name("entity", name))
        if join_keys is None:
            keys: tuple[str, ...] = (name,)
        elif isinstance(join_keys, str):
            keys = (join_keys,)
        else:
            keys = tuple(join_keys)
        if not keys:
            raise DefinitionError(f"entity '{name}': join_keys is empty", hint=f"omit it to use ['{name}']")
        for k in keys:
            check_name(f"entity '{name}'", k, "join key")
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"entity '{name}': join_keys {list(keys)} repeat a key")
        self._set("join_keys", keys)
        self._set("description", check_str("entity", name, "description", description))
        self._set("owner", check_str("entity", name, "owner", owner))
        self._set("tags", check_tags("entity", name, tags))

    @property
    def join_key(self) -> str:
        """The single join key (Feast compatibility); an error for composite entities."""
        if len(self.join_keys) != 1:
            raise DefinitionError(f"entity '{self.name}' has composite join keys {list(self.join_keys)}")
        return self.join_keys[0]

    def __repr__(self) -> str:
        return f"Entity(name={self.name!r}, join_keys={list(self.join_keys)!r})"
