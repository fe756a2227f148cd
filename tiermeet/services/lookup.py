"""Finding records the way people name them: a person by id or badge, a record by its
full id or its short reference (``S-1a2b3c4d``)."""

import uuid

from sqlalchemy import String, or_, select, type_coerce
from sqlalchemy.orm import Session

from tiermeet.domain.errors import DomainError
from tiermeet.domain.refs import ref_suffix, short_ref
from tiermeet.store.models import Person

#: Actor prefixes of changes made by the system itself rather than a person.
SYSTEM_ACTORS = ("system:", "ai:")


def find_person(session: Session, who: str) -> Person:
    """The active person with this id or badge, or a DomainError naming what was typed."""
    key = who.strip()
    person = session.scalars(select(Person).where(or_(Person.id == key, Person.badge == key))).first()
    if person is None or not person.active:
        raise DomainError(f"no person with id or badge {key!r}")
    return person


def resolve_actor(session: Session, who: str) -> tuple[str, str | None]:
    """(id recorded as the actor, role): a person's id and role, or a system actor such as
    ``ai:pdm`` with no role."""
    if who.startswith(SYSTEM_ACTORS):
        return who, None
    person = find_person(session, who)
    return person.id, person.role


def load_record(session: Session, model: type, entity: str, key: "uuid.UUID | str"):
    """A record by UUID, full id text or short reference (``S-1a2b3c4d``), or a DomainError."""
    if isinstance(key, uuid.UUID):
        record = session.get(model, key)
    elif (suffix := ref_suffix(key)) is not None:
        matches = session.scalars(select(model).where(type_coerce(model.id, String).like(f"%{suffix}")).limit(2)).all()
        if len(matches) > 1:
            raise DomainError(f"{key} matches more than one {entity}; use the full id")
        record = matches[0] if matches else None
    else:
        try:
            record = session.get(model, uuid.UUID(key))
        except ValueError:
            example = short_ref(entity, uuid.UUID(int=0x1A2B3C4D))
            raise DomainError(f"{key!r} is not a {entity} id or reference (like {example})") from None
    if record is None:
        raise DomainError(f"no {entity} {key}")
    return record
