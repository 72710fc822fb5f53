"""COM objects of the PowerShell subset: what `New-Object -ComObject` gives (the ProgIDs and
their objects are the caller's, see winps.py and winupdate.py).

A `ComObject` has named properties (read with `.Name`, case-insensitive; some settable, with
PowerShell's conversion to the property's type), methods with fixed argument counts, and prints
as `System.__ComObject`; ConvertTo-Json and the default view show its properties, as PowerShell
does. A method that fails raises `ComError` with the HRESULT, which PowerShell reports as
`Exception calling "M" with "N" argument(s): "... (Exception from HRESULT: 0x...)"`.
`ComCollection` is a COM collection: enumerable, `.Count`, `.Item(i)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .values import PSError, to_string, truthy


class ComError(Exception):  # noqa: N818 - named as .NET's COMException
    """A COM call failed with an HRESULT (and, for Win32 codes, the system's message)."""

    def __init__(self, hresult: int, text: str = "") -> None:
        super().__init__(hresult)
        self.hresult, self.text = hresult, text

    def __str__(self) -> str:
        code = f"Exception from HRESULT: 0x{self.hresult:08X}"
        return f"{self.text} ({code})" if self.text else code


def as_bool(value: Any) -> bool:
    """A value set on a VARIANT_BOOL property (PowerShell's conversion to [bool])."""
    return truthy(value)


def as_int(value: Any) -> int:
    """A value set on an integer property."""
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise PSError(f'Cannot convert value "{to_string(value)}" to type "System.Int32".'
                      ) from None


def as_str(value: Any) -> str:
    return to_string(value)


Method = tuple[str, tuple[int, ...], Callable[..., Any]]
"""A method: its display name, the argument counts it takes, the function."""


class ComObject:
    """Subclasses give `ps_properties()` (display name -> value, in display order),
    `writable` (lower-case name -> converter), `store()` for a set, and `methods()`."""

    writable: dict[str, Callable[[Any], Any]] = {}

    def ps_properties(self) -> dict[str, Any]:
        raise NotImplementedError

    def methods(self) -> dict[str, Method]:
        """Lower-case name -> method."""
        return {}

    def store(self, name: str, value: Any) -> None:
        """Keep a converted value of a writable property (`name` lower-case)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return "System.__ComObject"

    def ps_member(self, name: str) -> Any:
        for key, value in self.ps_properties().items():
            if key.lower() == name:
                return value
        return None

    def ps_set(self, name: str, value: Any) -> None:
        convert = self.writable.get(name)
        if convert is None:
            real = next((k for k in self.ps_properties() if k.lower() == name), None)
            if real is not None:
                raise PSError(f"'{real}' is a ReadOnly property.")
            raise PSError(f"The property '{name}' cannot be found on this object. Verify that "
                          "the property exists and can be set.")
        self.store(name, convert(value))

    def ps_call(self, name: str, args: list) -> Any:
        method = self.methods().get(name)
        if method is None:
            raise PSError(f"Method invocation failed because [System.__ComObject] does not "
                          f"contain a method named '{name}'.")
        display, counts, fn = method
        if len(args) not in counts:
            raise PSError(f'Cannot find an overload for "{display}" and the argument count: '
                          f'"{len(args)}".')
        try:
            return fn(*args)
        except ComError as exc:
            raise PSError(f'Exception calling "{display}" with "{len(args)}" argument(s): '
                          f'"{exc}"') from None


class ComCollection(list):
    """A COM collection (IUpdateCollection, IStringCollection, ICategoryCollection, ...):
    enumerates its items in pipelines and foreach, `.Count`, `.Item(index)`."""

    def ps_call(self, name: str, args: list) -> Any:
        if name != "item":
            raise PSError(f"Method invocation failed because [System.__ComObject] does not "
                          f"contain a method named '{name}'.")
        if len(args) != 1:
            raise PSError(f'Cannot find an overload for "Item" and the argument count: '
                          f'"{len(args)}".')
        index = as_int(args[0])
        if not 0 <= index < len(self):
            raise PSError('Exception calling "Item" with "1" argument(s): "Value does not '
                          'fall within the expected range."')  # E_INVALIDARG
        return self[index]
