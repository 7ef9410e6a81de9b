"""What each device holds between periods: its model, and how that model ages.

A device's model is the variant it last deployed, the samples its checkpoint was
trained on, the accuracy it had when deployed, and its age in periods.  A held model's
accuracy decays with age (``Drift``): the world the device sees moves away from the data
the model was trained on.  The drift model is an assumption (the paper's is not known):
a fixed relative loss of accuracy per period held,

    accuracy(age) = accuracy at deployment * (1 - per_period) ** age,

the simplest monotone decay with one parameter; per_period is relative to a period, so a
scenario states it for its own period length (default 0.05: a model kept 14 periods has
lost half its accuracy).  ``drift: 0`` turns it off.

A checkpoint that missed its deadline part-way is ``InFlight``: the bytes the device
holds of it, so that the next period can resume it instead of sending it again.
"""

from dataclasses import dataclass

from edgecollab.errors import ConfigError

DEFAULT_PER_PERIOD = 0.05


@dataclass(frozen=True)
class Drift:
    """Relative accuracy lost per period a model is held (0 <= per_period < 1)."""
    per_period: float = DEFAULT_PER_PERIOD

    def __post_init__(self):
        value = self.per_period
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value < 1:
            raise ConfigError('drift: per_period must be a number in [0, 1), got %r' % value)

    def decay(self, accuracy, age):
        """The accuracy of a model deployed at accuracy after age periods."""
        return accuracy * (1 - self.per_period) ** age


@dataclass(frozen=True)
class Held:
    """A device's deployed model: variant name ('' for the one it started with), size,
    the samples it was trained on, its accuracy when deployed and its age in periods."""
    model: str
    size_bytes: float
    samples: float
    accuracy: float
    age: int = 0

    def now(self, drift):
        """Its accuracy at its current age."""
        return drift.decay(self.accuracy, self.age)

    def kept(self, drift):
        """Its accuracy one period on: what keeping it through the next period gives."""
        return drift.decay(self.accuracy, self.age + 1)

    def older(self):
        """The same model one period older."""
        return Held(self.model, self.size_bytes, self.samples, self.accuracy, self.age + 1)


@dataclass(frozen=True)
class InFlight:
    """A checkpoint that missed its deadline with got_bytes of size_bytes at the device:
    the period that ordered it, its variant, and the samples it was trained on and the
    accuracy it brings when it arrives."""
    period: int
    model: str
    size_bytes: float
    got_bytes: float
    samples: float
    accuracy: float

    @property
    def left_bytes(self):
        """The bytes still to send."""
        return max(0.0, self.size_bytes - self.got_bytes)
