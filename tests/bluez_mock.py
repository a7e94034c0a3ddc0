"""A mock BlueZ on a private system bus, for running bleak's real BlueZ backend.

python-dbusmock's `bluez5` template plays bluetoothd: adapters and devices
appear on the bus, and updating a device's RSSI sends the PropertiesChanged
that bleak reports as an advertisement (see /work/shared/recipes/HEADLESS.md).

    with MockBlueZ() as bluez:
        bluez.add_adapter("hci0")
        dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", ibeacon=site.beacons["dome-n"].ident)
        ... start a BleakSource ...
        dome.advertise(-63)

The bus address is put in DBUS_SYSTEM_BUS_ADDRESS (where bleak looks) and the
previous value restored on exit, so tests never touch a real system bus.
Needs the `dbus-daemon` binary (Debian package dbus-daemon).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import dbus
from dbusmock import BusType, PrivateDBus, SpawnedMock

from guide.ble import APPLE, EDDYSTONE, eddystone_payload, ibeacon_payload
from guide.site import Eddystone, IBeacon

DEVICE = "org.bluez.Device1"
ENV = "DBUS_SYSTEM_BUS_ADDRESS"


def available() -> bool:
    return shutil.which("dbus-daemon") is not None


class MockBeacon:
    """One advertising device as BlueZ shows it."""

    def __init__(self, bluez: "MockBlueZ", path: str, address: str):
        self.bluez, self.path, self.address = bluez, path, address
        self._mock = dbus.Interface(bluez.bus.get_object("org.bluez", path), "org.freedesktop.DBus.Mock")

    def set_data(self, manufacturer: dict[int, bytes] | None = None,
                 service: dict[str, bytes] | None = None) -> None:
        """Replace the advertised payloads, typed as BlueZ types them (a{qv}, a{sv}):
        AddDevice's defaults have other types, which bleak cannot read."""
        self._mock.UpdateProperties(DEVICE, {
            "ManufacturerData": dbus.Dictionary(
                {dbus.UInt16(k): dbus.Array(v, signature="y", variant_level=1)
                 for k, v in (manufacturer or {}).items()}, signature="qv"),
            "ServiceData": dbus.Dictionary(
                {dbus.String(k): dbus.Array(v, signature="y", variant_level=1)
                 for k, v in (service or {}).items()}, signature="sv"),
        })

    def advertise(self, rssi: int) -> None:
        """One advertisement heard at `rssi` dBm."""
        self._mock.UpdateProperties(DEVICE, {"RSSI": dbus.Int16(rssi)})


class MockBlueZ:
    def __init__(self) -> None:
        self._saved_env = os.environ.get(ENV)
        self._bus = PrivateDBus(BusType.SYSTEM)
        self._bus.start()  # sets DBUS_SYSTEM_BUS_ADDRESS
        try:
            # The mock logs every call on stdout: a pipe nobody reads would fill
            # up after a few hundred advertisements and freeze it.
            self._mock = SpawnedMock.spawn_with_template("bluez5", {}, BusType.SYSTEM,
                                                         stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL)
        except BaseException:
            self._stop_bus()
            raise
        self.bus = BusType.SYSTEM.get_connection()
        self.control = dbus.Interface(self._mock.obj, "org.bluez.Mock")

    def add_adapter(self, name: str = "hci0") -> str:
        return str(self.control.AddAdapter(name, "guide"))

    def remove_adapter(self, name: str = "hci0") -> None:
        """The adapter unplugged: it and every device it saw leave the bus."""
        self.control.RemoveAdapterWithDevices(name)

    def discovering(self, name: str = "hci0") -> bool:
        """Whether a scanner has started discovery on the adapter: from then on
        it hears every advertisement (before it, they are lost)."""
        try:
            adapter = self.bus.get_object("org.bluez", f"/org/bluez/{name}")
            return bool(adapter.Get("org.bluez.Adapter1", "Discovering",
                                    dbus_interface="org.freedesktop.DBus.Properties"))
        except dbus.exceptions.DBusException:
            return False  # no such adapter (yet)

    def add_device(self, address: str, *, adapter: str = "hci0", name: str = "beacon",
                   manufacturer: dict[int, bytes] | None = None,
                   service: dict[str, bytes] | None = None) -> MockBeacon:
        path = str(self.control.AddDevice(adapter, address, name))
        device = MockBeacon(self, path, address)
        device.set_data(manufacturer, service)
        return device

    def add_beacon(self, address: str, ident: IBeacon | Eddystone, *, adapter: str = "hci0") -> MockBeacon:
        if isinstance(ident, IBeacon):
            return self.add_device(address, adapter=adapter, manufacturer={APPLE: ibeacon_payload(ident)})
        return self.add_device(address, adapter=adapter, service={EDDYSTONE: eddystone_payload(ident)})

    def close(self) -> None:
        try:
            self.bus.close()
            self._mock.terminate()
        finally:
            self._stop_bus()

    def _stop_bus(self) -> None:
        self._bus.stop()
        if self._saved_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._saved_env

    def __enter__(self) -> "MockBlueZ":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
