"""Model registry policy: challengers, champion changes and rollbacks, all explained in the registry itself
(the promotion gate that decides promotions is :mod:`time2bet.ml.promotion_gate`).

Aliases, not stages (deprecated since MLflow 2.9): ``challenger`` marks the latest registered candidate,
``champion`` the model the service loads (``models:/match_outcome@champion``). Every decision is written where
the model lives, so the registry alone answers "why is this model champion?":

- gate numbers and verdict on the challenger's version (tags ``gate.*`` and its description);
- on each champion, why and since when (``champion.reason``, ``champion.since``) and which version it replaced
  (``champion.previous_version``), the pointer rollback follows. A rollback is itself a champion change whose
  previous version is the one rolled back from, so a second rollback undoes the first;
- an append-only audit trail on the registered model (tags ``audit.0001``, ``audit.0002``, ...).

Model families (time2bet.ml.families): every version carries its family (tag ``family``). ``champion`` and
``challenger`` belong to the configured family (``model.family``, TIME2BET_MODEL_FAMILY; the one served); a version
of another family is ``challenger-<family>`` and, once its own gate passes, ``champion-<family>`` (say
``champion-market-aware``), so each family has its own best to be compared with and the service never loads a
family it was not configured for (:func:`family_aliases`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient

from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHALLENGER, CHAMPION, DEFAULT_FAMILY, FAMILY_TAG, MODEL_NAME, check_family

_ROLLED_BACK = "champion.rolled_back"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points to, as a string like every version here (MLflow returns an int)."""
    version = client.get_registered_model(name).aliases.get(alias)
    return None if version is None else str(version)


def append_audit(client: MlflowClient, name: str, event: str) -> None:
    count = sum(key.startswith("audit.") for key in client.get_registered_model(name).tags)
    client.set_registered_model_tag(name, f"audit.{count + 1:04d}", f"{utc_now()} {event}")


def family_aliases(family: str = DEFAULT_FAMILY, champion_family: str = DEFAULT_FAMILY) -> tuple[str, str]:
    """(champion alias, challenger alias) of ``family`` when ``champion_family`` is the configured one: ``champion``
    and ``challenger`` for it, ``champion-<family>`` and ``challenger-<family>`` for another."""
    for value in (family, champion_family):
        check_family(value)
    if family == champion_family:
        return CHAMPION, CHALLENGER
    return f"{CHAMPION}-{family}", f"{CHALLENGER}-{family}"


def version_family(client: MlflowClient, name: str, version: str) -> str:
    """A version's family (its ``family`` tag; versions registered before families were independent)."""
    return client.get_model_version(name, str(version)).tags.get(FAMILY_TAG) or DEFAULT_FAMILY


def register_challenger(
    model_uri: str, name: str = MODEL_NAME, tags: Mapping[str, str] | None = None, *, tracking_uri: str,
    family: str = DEFAULT_FAMILY, champion_family: str = DEFAULT_FAMILY,
) -> str:
    """Register a logged model (``LoggedRun.model_uri``) of ``family`` as a new version tagged with it, and point
    its family's challenger alias at it (:func:`family_aliases`: ``challenger`` when ``family`` is the configured
    ``champion_family``)."""
    _, alias = family_aliases(family, champion_family)
    client = registry_client(tracking_uri)
    version = str(mlflow.register_model(model_uri, name, tags={**dict(tags or {}), FAMILY_TAG: family}).version)
    client.set_registered_model_alias(name, alias, version)
    append_audit(client, name, f"register v{version} ({family}) as {alias} from {model_uri}")
    return version


# --- champion changes -----------------------------------------------------------------------------------

def set_champion(client: MlflowClient, name: str, version: str, reason: str, action: str,
                 alias: str = CHAMPION) -> str | None:
    """Point ``alias`` (``champion``, or another family's ``champion-<family>``) at ``version``; the version it
    pointed to before, which the new one records."""
    previous = alias_version(client, name, alias)
    if previous == version:
        raise ValueError(f"{name} v{version} is already {alias}")
    client.set_registered_model_alias(name, alias, version)
    tags = {"champion.previous_version": previous or "", "champion.reason": reason,
            "champion.since": utc_now(), "champion.action": action}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if _ROLLED_BACK in client.get_model_version(name, version).tags:
        client.delete_model_version_tag(name, version, _ROLLED_BACK)
    for other, pointed in client.get_registered_model(name).aliases.items():
        if other.startswith(CHALLENGER) and str(pointed) == version:
            client.delete_registered_model_alias(name, other)  # no longer challenging anything
    append_audit(client, name, f"{action}: {alias} v{previous or '-'} -> v{version}: {reason}")
    return previous


def promote(name: str, version: str, reason: str, *, tracking_uri: str, alias: str = CHAMPION) -> str | None:
    """Make ``version`` champion (or ``alias``, another family's champion alias); returns the version it replaced
    (None for the first)."""
    return set_champion(registry_client(tracking_uri), name, str(version), reason, "promote", alias)


def rollback(name: str, reason: str = "manual rollback", *, tracking_uri: str) -> str:
    """Give ``champion`` back to the version the current champion replaced; returns that version.

    The restored version records the one rolled back from as its previous champion, so calling rollback
    again reverses this one; the version rolled back from is tagged ``champion.rolled_back``."""
    client = registry_client(tracking_uri)
    current = alias_version(client, name, CHAMPION)
    if current is None:
        raise LookupError(f"{name} has no champion to roll back")
    previous = client.get_model_version(name, current).tags.get("champion.previous_version")
    if not previous:
        raise LookupError(f"{name} v{current} replaced no earlier champion; nothing to roll back to")
    set_champion(client, name, previous, f"rollback from v{current}: {reason}", "rollback")
    client.set_model_version_tag(name, current, _ROLLED_BACK, f"{utc_now()} back to v{previous}: {reason}")
    return previous


# --- explanation ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChampionDescription:
    name: str
    version: str
    since: str
    reason: str
    previous_version: str | None
    gate: dict[str, str]  # the gate.* tags of this version, without the prefix (empty if promoted by hand)
    tags: dict[str, str]  # every tag of the version (data_version, run id, ... as registered)
    audit: tuple[str, ...]  # the registered model's audit trail, oldest first

    @property
    def family(self) -> str:
        """The champion's model family (time2bet.ml.families)."""
        return self.tags.get(FAMILY_TAG) or DEFAULT_FAMILY

    def __str__(self) -> str:
        replaced = f"v{self.previous_version}" if self.previous_version else "nothing (first champion)"
        lines = [f"{self.name} v{self.version} is champion since {self.since}: {self.reason}",
                 f"Model family: {self.family}.",
                 f"It replaced: {replaced}."]
        if self.gate:
            lines += self._gate_lines()
        return "\n".join(lines)

    def _gate_lines(self) -> list[str]:
        from time2bet.ml.promotion_gate import FALLBACKS  # the gate's module builds on this one

        gate = self.gate

        def figure(key: str) -> str:
            return f"{float(gate[key]):.5f}" if gate.get(key) else "-"

        lines = [(f"Gate on {gate.get('window')} (n={gate.get('n')}): log-loss {figure('challenger_log_loss')} vs "
                 f"champion {figure('champion_log_loss')} (tolerance {gate.get('tolerance')}), logistic-regression "
                 f"baseline {figure('baseline_log_loss')}, Elo-only model {figure('elo_only_log_loss')}, ECE "
                 f"{figure('challenger_ece')} (threshold {figure('ece_threshold' if gate.get('ece_threshold') else 'max_ece')}).")]
        if gate.get("ci_hi"):
            lines.append(f"Against champion v{gate.get('champion_version')}: log-loss difference "
                         f"{float(gate['log_loss_diff']):+.5f}, {float(gate['ci_level']):.0%} paired bootstrap interval "
                         f"[{float(gate['ci_lo']):+.5f}, {float(gate['ci_hi']):+.5f}] ({gate['ci_n_resamples']} resamples "
                         f"of {gate['ci_n_blocks']} {gate['ci_block']} blocks, seed {gate['ci_seed']}); the gate promotes only "
                         f"when the upper bound is below the tolerance.")
        elif gate.get("champion_log_loss"):
            lines.append("Judged against the champion by the point estimate (gated before the bootstrap interval).")
        else:
            family = f" in the {gate['family']} family" if gate.get("family") else ""
            lines.append(f"No champion to compare with{family}: the first challenger that passed became "
                         f"{gate.get('champion_alias') or 'champion'}.")
        if gate.get("elo_only_log_loss"):
            champion, elo = float(gate["challenger_log_loss"]), float(gate["elo_only_log_loss"])
            lines.append(f"Simplest-model floor: gate-window log-loss {champion:.5f} "
                         f"{'<=' if champion <= elo else '>'} the Elo-only model's {elo:.5f}.")
        if gate.get("fallback_of"):
            long = FALLBACKS[gate.get("fallback_model", "logreg")][1]
            lines.append(f"Registered as the {long} fallback of v{gate['fallback_of']}, which the {long} beat on that "
                         f"window.")
        return lines


def describe_champion(name: str = MODEL_NAME, *, tracking_uri: str) -> ChampionDescription:
    """Why the champion is champion, read back from the registry's tags."""
    client = registry_client(tracking_uri)
    version = alias_version(client, name, CHAMPION)
    if version is None:
        raise LookupError(f"{name} has no champion")
    tags = dict(client.get_model_version(name, version).tags)
    model_tags = client.get_registered_model(name).tags
    return ChampionDescription(
        name=name, version=version, since=tags.get("champion.since", ""), reason=tags.get("champion.reason", ""),
        previous_version=tags.get("champion.previous_version") or None,
        gate={k.removeprefix("gate."): v for k, v in tags.items() if k.startswith("gate.")},
        tags=tags,
        audit=tuple(model_tags[k] for k in sorted(model_tags) if k.startswith("audit.")),
    )
