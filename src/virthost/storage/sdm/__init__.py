"""The work behind the SDM verbs on file domains, run as host jobs.

:func:`job_factories` gives :class:`~virthost.api.sdm.SdmApi` one factory per verb, each
making the :class:`~virthost.storage.jobs.JobWork` the job registry runs:

- :mod:`.copy_data`: SDM.copy_data, ``qemu-img convert`` into a volume the engine created;
- :mod:`.update_volume`: SDM.update_volume, through the ImageStore's metadata rules;
- :mod:`.amend_volume`: SDM.amend_volume, ``qemu-img amend`` of the qcow2 compat level;
- :mod:`.merge`: SDM.merge, ``qemu-img commit`` of a volume into its parent (cold merge);
- :mod:`.merge_steps`: the cold merge steps around it, :func:`prepare_merge` and
  :func:`finalize_merge`, for StoragePool.prepareMerge and StoragePool.finalizeMerge;
- :mod:`.subchain`: the checked (base, top) pair the three merge steps share;
- :mod:`.context`: the services a job needs, and the generation/legality protocol that fences
  stale and interrupted jobs without persisting anything.
"""

from __future__ import annotations

from virthost.storage.sdm.context import LocatedVolume, SdmContext, volume_operation
from virthost.storage.sdm.factories import job_factories
from virthost.storage.sdm.merge_steps import finalize_merge, prepare_merge

__all__ = [
    "LocatedVolume",
    "SdmContext",
    "finalize_merge",
    "job_factories",
    "prepare_merge",
    "volume_operation",
]
