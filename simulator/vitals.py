"""Plausible vital signs per simulated device: a personal baseline, slow drift, occasional
anomalies, optional location jitter; deterministic for a given seed."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

__all__ = ["NORMAL_RANGES", "Device", "make_devices"]

NORMAL_RANGES: dict[str, tuple[float, float]] = {
    "heartRate": (50, 110),
    "systolic": (95, 145),
    "diastolic": (55, 95),
    "oxygenSaturation": (94, 100),
    "bodyTemperature": (97.0, 99.9),
}
"""Where readings stay when no anomaly is drawn (temperature in °F, as the seed's 98.6)."""

ANOMALIES: dict[str, dict[str, tuple[float, float]]] = {
    "tachycardia": {"heartRate": (130, 180)},
    "bradycardia": {"heartRate": (30, 45)},
    "hypertension": {"systolic": (165, 200), "diastolic": (100, 125)},
    "hypoxemia": {"oxygenSaturation": (78, 89)},
    "fever": {"bodyTemperature": (100.9, 104.0)},
}

# Cities the devices live around: (latitude, longitude).
HOMES = ((40.7128, -74.0060), (41.8781, -87.6298), (34.0522, -118.2437), (51.5074, -0.1278),
         (48.8566, 2.3522), (52.5200, 13.4050), (35.6762, 139.6503), (-33.8688, 151.2093))


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass
class Device:
    device_id: str
    rng: random.Random
    baseline: dict[str, float]
    home: tuple[float, float]
    anomaly_rate: float
    jitter_degrees: float
    current: dict[str, float] = field(default_factory=dict)
    anomalies: int = 0

    def reading(self, now: float | None = None) -> dict[str, object]:
        """The next message: the seed's JSON schema, one reading per vital sign."""
        values = {}
        for name, (low, high) in NORMAL_RANGES.items():
            span = high - low
            previous = self.current.get(name, self.baseline[name])
            # Slow drift: a small step, pulled back towards the device's own baseline.
            step = self.rng.gauss(0, span * 0.02) + (self.baseline[name] - previous) * 0.1
            values[name] = _clamp(previous + step, low, high)
        self.current = dict(values)
        if self.anomaly_rate and self.rng.random() < self.anomaly_rate:
            kind = self.rng.choice(sorted(ANOMALIES))
            for name, (low, high) in ANOMALIES[kind].items():
                values[name] = self.rng.uniform(low, high)
            self.anomalies += 1
        latitude, longitude = self.home
        if self.jitter_degrees:
            latitude += self.rng.uniform(-self.jitter_degrees, self.jitter_degrees)
            longitude += self.rng.uniform(-self.jitter_degrees, self.jitter_degrees)
        return {
            "deviceId": self.device_id,
            "timestamp": int(now if now is not None else time.time()),
            "heartRate": round(values["heartRate"]),
            "systolic": round(values["systolic"]),
            "diastolic": round(min(values["diastolic"], values["systolic"] - 20)),
            "oxygenSaturation": round(values["oxygenSaturation"]),
            "bodyTemperature": round(values["bodyTemperature"], 1),
            "latitude": round(latitude, 6),
            "longitude": round(longitude, 6),
        }


def make_devices(
    count: int, seed: int, anomaly_rate: float = 0.0, jitter_degrees: float = 0.0
) -> list[Device]:
    """`count` devices whose baselines, homes and readings follow from `seed` alone."""
    root = random.Random(seed)
    devices = []
    for index in range(count):
        rng = random.Random(root.getrandbits(64))
        baseline = {name: rng.uniform(low + (high - low) * 0.25, high - (high - low) * 0.25)
                    for name, (low, high) in NORMAL_RANGES.items()}
        devices.append(Device(
            device_id=f"device-{index + 1:04d}",
            rng=rng,
            baseline=baseline,
            home=HOMES[index % len(HOMES)],
            anomaly_rate=anomaly_rate,
            jitter_degrees=jitter_degrees,
        ))
    return devices
