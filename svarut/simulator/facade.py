"""The :class:`Simulator` facade: its settings, starting and stopping the
server, where it listens, clients and environment for it, scenarios, and
what the fake SvarUt saw (:attr:`~Simulator.received`, :meth:`~Simulator.get`,
:attr:`~Simulator.requests`).

It owns a :class:`~svarut.simulator.handler.Server` and the
:class:`~svarut.simulator.intake.FakeSvarUt` that server serves; the fake
SvarUt reads its settings from the Simulator (a
:class:`~svarut.simulator.intake.Settings`) at each request. Imports go one
way: this module imports the handler and the intake, neither imports it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509

from svarut._client import AsyncSvarUtClient, SvarUtClient
from svarut.runtime.auth import EnvironmentName, Keystore, MaskinportenConfig
from svarut.runtime.kryptering import PUBLICKEY_PATH, SvarUtSertifikat
from svarut.runtime.validation import MAX_PART_COUNT, MAX_PART_HEADER_SIZE
from svarut.simulator.handler import Server
from svarut.simulator.intake import API_PREFIX, FakeSvarUt, RequestRecord
from svarut.simulator.keys import SimulatorKeys, throwaway_keys
from svarut.simulator.maskinporten import MaskinportenStandIn
from svarut.simulator.records import ReceivedForsendelse
from svarut.simulator.scenarios import Scenarios

__all__ = ["DEFAULT_CLIENT_ID", "MASKINPORTEN_PREFIX", "Simulator"]

log = logging.getLogger("svarut.simulator")

MASKINPORTEN_PREFIX = "/maskinporten/"
DEFAULT_CLIENT_ID = "svarut-simulator"


class Simulator:
    """SvarUt and Maskinporten on 127.0.0.1, for tests and demos.

    >>> with Simulator(step_seconds=0.05) as sim:  # doctest: +SKIP
    ...     with sim.client() as client:
    ...         forsendelse_id = client.send_til_person(konto_id=sim.konto_id, ...)
    ...     sim.get(forsendelse_id).documents

    ``port`` 0 picks a free port. ``step_seconds`` is how long each status
    lasts before the next (0: straight to the end). ``storage_dir`` receives
    the documents (default: a temporary directory removed by :meth:`stop`).
    ``konto_ids`` are the kontoer the integration may use (default: one
    fresh id, :attr:`konto_id`). ``integrasjon_id``/``integrasjon_passord``
    default to fresh random values. ``maskinporten_client_id`` is the one
    client id the Maskinporten stand-in accepts (None: any);
    ``trusted_certificates`` limits the certificates it accepts (default:
    any valid one). ``not_digital``: fødselsnumre without a digital mailbox,
    whose letters go to print. ``reject_duplicates`` turns SvarUt's duplicate
    rule on or off. ``keys``: the key pairs to use (default: the process's
    throwaway keys). ``max_part_count`` and ``max_part_header_size`` are the
    limits of SvarUt's multipart parser (Tomcat's ``maxPartCount`` and
    ``maxPartHeaderSize``; default Tomcat's 50 parts and 512 bytes, None for
    no limit); like ``reject_duplicates`` they may be changed on a running
    simulator. ``token_lifetime``: seconds each Maskinporten token lasts.
    ``maskinporten_scopes``: the scopes the Maskinporten client has been
    granted (None: any; a token request for another is ``invalid_scope``).
    ``clock_offset``: seconds the simulator's clock (Maskinporten's checks of
    assertions and certificates, and every ``Date`` header) runs ahead of this
    machine's, negative for behind: a client whose clock is off the other
    way. Both may be changed on a running simulator through
    :attr:`maskinporten` (``allowed_scopes``, ``clock_offset``).

    Raises:
        ValueError: No konto in ``konto_ids``, or a part limit below 1.
        TypeError: A part limit that is not an int or None.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        step_seconds: float = 1.0,
        storage_dir: str | Path | None = None,
        konto_ids: Iterable[uuid.UUID | str] | None = None,
        integrasjon_id: uuid.UUID | str | None = None,
        integrasjon_passord: str | None = None,
        maskinporten_client_id: str | None = DEFAULT_CLIENT_ID,
        token_lifetime: int = 120,
        trusted_certificates: Iterable[x509.Certificate] | None = None,
        maskinporten_scopes: Iterable[str] | None = None,
        clock_offset: float = 0.0,
        not_digital: Iterable[str] = (),
        reject_duplicates: bool = True,
        keys: SimulatorKeys | None = None,
        max_part_count: int | None = MAX_PART_COUNT,
        max_part_header_size: int | None = MAX_PART_HEADER_SIZE,
    ) -> None:
        for name, value in (("max_part_count", max_part_count), ("max_part_header_size", max_part_header_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
        self.max_part_count = max_part_count
        self.max_part_header_size = max_part_header_size
        self.port_requested = port
        self.step_seconds = step_seconds
        self.konto_ids: tuple[uuid.UUID, ...] = tuple(
            k if isinstance(k, uuid.UUID) else uuid.UUID(str(k)) for k in (konto_ids or [uuid.uuid4()])
        )
        if not self.konto_ids:
            raise ValueError("konto_ids must name at least one konto")
        self.integrasjon_id = str(uuid.UUID(str(integrasjon_id)) if integrasjon_id else uuid.uuid4())
        self.integrasjon_passord = integrasjon_passord or secrets.token_urlsafe(24)
        self.maskinporten_client_id = maskinporten_client_id
        self.not_digital: set[str] = set(not_digital)
        self.reject_duplicates = reject_duplicates
        self.keys = keys or throwaway_keys()
        self.scenarios = Scenarios()
        self._token_lifetime = token_lifetime
        self._trusted = None if trusted_certificates is None else list(trusted_certificates)
        self._maskinporten_scopes = None if maskinporten_scopes is None else list(maskinporten_scopes)
        self._clock_offset = clock_offset
        self._storage_arg = Path(storage_dir) if storage_dir is not None else None
        self._owned_storage: Path | None = None
        self._storage: Path | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._maskinporten: MaskinportenStandIn | None = None
        self._svarut = FakeSvarUt(self)

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind 127.0.0.1 and serve in a background thread.

        Returns:
            The simulator itself, so ``sim = Simulator().start()`` works.

        Raises:
            RuntimeError: It is running already.
            OSError: The port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the simulator is running already")
        if self._storage_arg is None:
            self._owned_storage = self._storage = Path(tempfile.mkdtemp(prefix="svarut-simulator-"))
        else:
            self._storage = self._storage_arg
            self._storage.mkdir(parents=True, exist_ok=True)
        server = Server(self._svarut, self.port_requested)
        self._server = server
        self._maskinporten = MaskinportenStandIn(
            issuer=self.maskinporten_issuer,
            client_id=self.maskinporten_client_id,
            token_lifetime=self._token_lifetime,
            trusted_certificates=self._trusted,
            allowed_scopes=self._maskinporten_scopes,
            clock_offset=self._clock_offset,
        )
        self.keys.client.write_pem(self._storage / "client-keystore.pem")
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="svarut-simulator", daemon=True
        )
        self._thread.start()
        log.info("SvarUt simulator at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join every thread, and remove
        the storage directory if the simulator made it. Does nothing if it is
        not running."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            # Wakes handler threads waiting on an idle keep-alive connection.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        server.server_close()
        if self._owned_storage is not None:
            shutil.rmtree(self._owned_storage, ignore_errors=True)
            self._owned_storage = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether it is serving (between :meth:`start` and :meth:`stop`)."""
        return self._server is not None

    # --- where it is ------------------------------------------------------------

    def _require(self) -> Server:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return self._server

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, for ``port=0``).

        Raises:
            RuntimeError: It is not running.
        """
        return int(self._require().server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """SvarUt's API root: the client's ``base_url``."""
        return self.url + API_PREFIX

    @property
    def maskinporten_issuer(self) -> str:
        """The Maskinporten stand-in's issuer (``MASKINPORTEN_ISSUER``)."""
        return self.url + MASKINPORTEN_PREFIX

    @property
    def token_path(self) -> str:
        """The path of the stand-in's token endpoint, without the host."""
        return MASKINPORTEN_PREFIX + "token"

    @property
    def token_endpoint(self) -> str:
        """The stand-in's token endpoint (``MASKINPORTEN_TOKEN_ENDPOINT``)."""
        return self.url + self.token_path

    @property
    def sertifikat_url(self) -> str:
        """Where the simulator serves SvarUt's encryption certificate."""
        return self.url + PUBLICKEY_PATH

    @property
    def page_url(self) -> str:
        """The simulator's web page: what it received, and its scenarios."""
        return self.url + "/simulator"

    @property
    def storage_dir(self) -> Path:
        """The directory the received documents are written to.

        Raises:
            RuntimeError: It is not running.
        """
        if self._storage is None:
            raise RuntimeError("the simulator is not running")
        return self._storage

    @property
    def keystore_path(self) -> Path:
        """A PEM file with the client keystore's key and certificate (for ``MASKINPORTEN_KEYSTORE``)."""
        return self.storage_dir / "client-keystore.pem"

    @property
    def konto_id(self) -> uuid.UUID:
        """The first (by default the only) konto."""
        return self.konto_ids[0]

    @property
    def keystore(self) -> Keystore:
        """The client's :class:`~svarut.auth.Keystore`, which the Maskinporten stand-in trusts."""
        return self.keys.client.keystore()

    @property
    def sertifikat(self) -> SvarUtSertifikat:
        """SvarUt's certificate, as served at :attr:`sertifikat_url`."""
        return self.keys.sertifikat

    @property
    def maskinporten(self) -> MaskinportenStandIn:
        """The Maskinporten stand-in: the tokens it issued, and its settings.

        Raises:
            RuntimeError: It is not running.
        """
        if self._maskinporten is None:
            raise RuntimeError("the simulator is not running")
        return self._maskinporten

    # --- clients ----------------------------------------------------------------

    def maskinporten_config(self, **options: Any) -> MaskinportenConfig:
        """A MaskinportenConfig for the stand-in (``options`` override fields).

        Args:
            **options: :class:`~svarut.auth.MaskinportenConfig` fields to set,
                such as ``scopes``.

        Returns:
            The configuration, with the stand-in's issuer, token endpoint,
            client id and :attr:`keystore`.
        """
        settings: dict[str, Any] = {
            "client_id": self.maskinporten_client_id or DEFAULT_CLIENT_ID,
            "keystore": self.keystore,
            "issuer": self.maskinporten_issuer,
            "token_endpoint": self.token_endpoint,
            **options,
        }
        return MaskinportenConfig(**settings)

    def _client_settings(self, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "integrasjon_id": self.integrasjon_id,
            "integrasjon_passord": self.integrasjon_passord,
            "maskinporten": self.maskinporten_config(),
            **options,
        }

    def client(self, *, environment: EnvironmentName = "test", **options: Any) -> SvarUtClient:
        """A new :class:`~svarut.SvarUtClient` for the simulator, through the
        whole auth path (Maskinporten stand-in, integration headers). Other
        keyword arguments go to ``for_environment``; close the client when done.

        Args:
            environment: The environment the client is made for (its pre-send
                rules); the URLs are the simulator's either way.
            **options: Options of :meth:`svarut.SvarUtClient.for_environment`.

        Returns:
            The client. It needs the simulator running.

        >>> with Simulator() as sim, sim.client() as client:  # doctest: +SKIP
        ...     client.hent_status(konto_id=sim.konto_id, forsendelse_id=forsendelse_id)
        """
        return SvarUtClient.for_environment(environment, **self._client_settings(options))

    def async_client(self, *, environment: EnvironmentName = "test", **options: Any) -> AsyncSvarUtClient:
        """The async :meth:`client`, taking the same arguments; use it with ``async with``.

        Returns:
            An :class:`~svarut.AsyncSvarUtClient` for the simulator.
        """
        return AsyncSvarUtClient.for_environment(environment, **self._client_settings(options))

    def environ(self, *, environment: str = "test") -> dict[str, str]:
        """The environment variables ``SvarUtClient.from_env`` and the
        ``svarut`` command read, pointing at this simulator (with ``SVARUT_KONTO_ID``).

        Args:
            environment: The value of ``SVARUT_ENVIRONMENT``.

        Returns:
            The variables, to pass as ``environ=`` or to a subprocess's ``env``.

        >>> client = SvarUtClient.from_env(environ=sim.environ())  # doctest: +SKIP
        """
        return {
            "SVARUT_ENVIRONMENT": environment,
            "SVARUT_BASE_URL": self.base_url,
            "SVARUT_INTEGRASJON_ID": self.integrasjon_id,
            "SVARUT_INTEGRASJON_PASSORD": self.integrasjon_passord,
            "SVARUT_KONTO_ID": str(self.konto_id),
            "MASKINPORTEN_CLIENT_ID": self.maskinporten_client_id or DEFAULT_CLIENT_ID,
            "MASKINPORTEN_KEYSTORE": str(self.keystore_path),
            "MASKINPORTEN_ISSUER": self.maskinporten_issuer,
            "MASKINPORTEN_TOKEN_ENDPOINT": self.token_endpoint,
        }

    # --- what it saw --------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedForsendelse]:
        """Every forsendelse accepted so far, oldest first."""
        return self._svarut.received

    def get(self, forsendelse_id: uuid.UUID | str) -> ReceivedForsendelse:
        """The forsendelse with that id, as the simulator received it.

        Args:
            forsendelse_id: The id SvarUt (the simulator) gave it.

        Returns:
            Its :class:`ReceivedForsendelse`: metadata, documents, status history.

        Raises:
            KeyError: The simulator has no forsendelse with that id.
        """
        return self._svarut.get(forsendelse_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or reset) so far, oldest first."""
        return self._svarut.requests

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued (the next call gets 401 and
        the client fetches a fresh one)."""
        self.maskinporten.revoke_all()

    def advance(self, seconds: float) -> None:
        """Move the status clock forward, as if ``seconds`` had passed, so
        statuses move on without waiting.

        Args:
            seconds: How far to move it.
        """
        self._svarut.advance(seconds)

    def clear(self) -> None:
        """Forget every forsendelse, request and scenario rule (documents on disk stay)."""
        self._svarut.clear()
