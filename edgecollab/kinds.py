"""The project's closed sets, each an Enum, in one home.

Each is a ``StrEnum``: a member equals its word as a string, so scenario files, records,
API bodies and command lines keep their plain words while the code names members
(``Timing.OVERLAP``, not ``'overlap'``).  A set whose members carry behaviour has its
objects elsewhere, keyed by these members (``topologies.media.MEDIA``).
"""

import enum

from edgecollab.errors import ConfigError


class Medium(enum.StrEnum):
    """How the devices' transfers share the bottleneck (topologies/media.py)."""
    SHARED = 'shared'            # one budget for everything, both directions
    DUPLEX = 'duplex'            # one budget per direction
    AIRTIME = 'airtime'          # one cell, each device at its own channel's rate
    ACCESS = 'access'            # a link of its own per device


class Direction(enum.StrEnum):
    """A transfer's direction: the device's upload, or the checkpoint's download."""
    UP = 'up'
    DOWN = 'down'


class LinkMode(enum.StrEnum):
    """Whether a class may borrow capacity others leave idle."""
    STRICT = 'strict'                      # ceil = its share
    WORK_CONSERVING = 'work-conserving'    # ceil = the link


class Timing(enum.StrEnum):
    """When the checkpoint's download may run within a period."""
    OVERLAP = 'overlap'          # from the period's start, beside the upload
    SEQUENTIAL = 'sequential'    # after the upload and the edge's update


class Menu(enum.StrEnum):
    """Which checkpoint sizes the edge may distil."""
    YOLOV8 = 'yolov8'            # the YOLOv8 family
    CONTINUOUS = 'continuous'    # any size between model.min_size and model.max_size


class DelayEngine(enum.StrEnum):
    """What imposes a path's delay, jitter and loss."""
    AUTO = 'auto'                # netem where the kernel has it and it can, else userspace
    USERSPACE = 'userspace'      # the delay line (topologies/delayline.py)
    NETEM = 'netem'              # the kernel's sch_netem


class TraceFormat(enum.StrEnum):
    """How a trace file is laid out (scenarios/traces.py reads each)."""
    AUTO = 'auto'                # told from the file's first lines
    MAHIMAHI = 'mahimahi'        # one line per packet delivery opportunity (ms)
    TWOCOL = 'twocol'            # time, value
    CSV = 'csv'                  # a header and named columns


class Backend(enum.StrEnum):
    """What carries a run's bytes."""
    MININET = 'mininet'          # real TCP between Mininet hosts over tc-shaped links
    FLUID = 'fluid'              # ideal transfers computed, no network


class Tunnel(enum.StrEnum):
    """What carries a cluster's links between servers (topologies/cluster.py)."""
    VXLAN = 'vxlan'              # a VXLAN device each end (UDP 4789)
    SSH = 'ssh'                  # Mininet's SSH tunnel: TAP devices over ssh -w


class Outcome(enum.StrEnum):
    """What happened to a device in a period (the records' outcome column; their
    meanings: controller/loop.py OUTCOMES)."""
    DELIVERED = 'delivered'
    RESUMED = 'resumed'
    KEPT = 'kept'
    MISSED = 'missed'
    INFEASIBLE = 'infeasible'
    STARVED = 'starved'


class Reason(enum.StrEnum):
    """The reasons of a plan that the loop acts on (an allocation's reason; any other
    reason is text for the reader)."""
    KEEPS = 'keeps its previous model'
    RESUMES = 'finishes the checkpoint that missed the last deadline'


def words(kind):
    """The words of a closed set, in its order (for schemas, choices and messages)."""
    return [member.value for member in kind]


def member(kind, value, what):
    """The member of the closed set kind that value names (a word or a member);
    ConfigError 'WHAT VALUE is unknown (known: ...)' otherwise."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        raise ConfigError('%s %r is unknown (known: %s)'
                          % (what, value, ', '.join(words(kind)))) from None
