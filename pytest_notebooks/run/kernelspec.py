"""The kernel a case asks for: its installed kernelspec, or the failure saying none is installed.

Names resolve as jupyter_client's KernelManager resolves them when papermill starts a kernel
(``python`` means the native kernel, spec directories match in any case), so a missing kernel
fails its case before any kernel starts, with the installed ones listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_notebooks.models import CellFailure, FailureKind


@dataclass(frozen=True)
class KernelChoice:
    """The kernel ``asked`` for (None: no name anywhere), the installed kernelspec's ``name`` (None:
    not installed), and the extra arguments its kernel starts with."""

    asked: str | None
    name: str | None
    arguments: tuple[str, ...] = ()

    @classmethod
    def find(cls, asked: str | None) -> KernelChoice:
        """Look ``asked`` up among the installed kernelspecs."""
        from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager, NoSuchKernel

        if not asked:
            return cls(asked, None)
        resolved = NATIVE_KERNEL_NAME if asked == "python" else asked
        try:
            spec = KernelSpecManager().get_kernel_spec(resolved)
        except NoSuchKernel:
            return cls(asked, None)
        return cls(asked, resolved, _quiet_ipykernel(getattr(spec, "argv", None) or []))

    def failure(self) -> CellFailure | None:
        """Why no kernel can run the case (None: one can)."""
        if self.name is not None:
            return None
        return missing_kernel(self.asked) if self.asked else _no_kernel()


def _quiet_ipykernel(argv: list[str]) -> tuple[str, ...]:
    """Silence ipykernel's own log (jupyter_client interrupts every kernel it shuts down, and
    ipykernel logs that as an error). Cell output is unaffected; fatal errors still reach stderr.
    Other kernels get no extra arguments."""
    return ("--IPKernelApp.log_level=CRITICAL",) if "ipykernel" in " ".join(argv) else ()


def _no_kernel() -> CellFailure:
    return CellFailure(
        FailureKind.MISSING_KERNEL,
        evalue="the notebook names no kernel (metadata.kernelspec)",
        detail="set `kernel:` in the fixture file or pass --notebooks-kernel NAME (for example python3)",
    )


def missing_kernel(name: str) -> CellFailure:
    """The failure of a case whose kernel ``name`` is not installed, with the installed ones."""
    from jupyter_client.kernelspec import KernelSpecManager

    installed = sorted(KernelSpecManager().find_kernel_specs())
    return CellFailure(
        FailureKind.MISSING_KERNEL,
        evalue=f"no kernel named {name!r} is installed here",
        detail=(
            f"installed kernels: {', '.join(installed) or 'none'}. Pick another with --notebooks-kernel "
            "NAME or `kernel:` in the fixture file, or install it (for a Python environment: "
            f"python -m ipykernel install --user --name {name})"
        ),
    )
