"""A registry of classes by their `name`: prompt formats, preference formats, training modes. Registration
refuses a name registered twice (naming both modules), so two plugins can never silently shadow each other."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes keyed by their `name` class attribute; `what` names them in the duplicate error."""

    def __init__(self, what: str):
        self.what = what
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: add `cls` under `cls.name`. Raises ValueError when the name is taken."""
        name = cls.name  # type: ignore[attr-defined]
        if name in self._classes:
            raise ValueError(f"{self.what} {name!r} is registered twice ({self._classes[name].__module__} and "
                             f"{cls.__module__})")
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> T | None:
        return self._classes.get(name)

    def all(self) -> dict[str, T]:
        """A copy: name -> class, in registration order."""
        return dict(self._classes)
