import pytest

from taskflow import Actor, ActorType, CompanyId, InvalidPayload, UserId, UserRef


def test_a_person_is_a_user_actor_written_user_at_company():
    bea = Actor(UserId("bea"), CompanyId("acme"), {"buyer"})
    assert bea.type is ActorType.USER
    assert not bea.is_system
    assert str(bea) == "bea@acme"


def test_system_actor_acts_for_a_company_and_says_so_when_written():
    rule = Actor.system("reminders", CompanyId("acme"), ["buyer"])
    assert (rule.type, rule.is_system, rule.roles) == (ActorType.SYSTEM, True, {"buyer"})
    assert str(rule) == "system:reminders@acme"
    assert rule.ref == UserRef(CompanyId("acme"), UserId("reminders"))


def test_system_actor_differs_from_a_user_of_the_same_name():
    assert Actor.system("bea", CompanyId("acme")) != Actor(UserId("bea"), CompanyId("acme"))


def test_actor_type_is_keyword_only_and_accepts_its_value():
    assert Actor(UserId("x"), CompanyId("c"), type="system").type is ActorType.SYSTEM
    with pytest.raises(TypeError):
        Actor(UserId("x"), CompanyId("c"), frozenset(), ActorType.SYSTEM)
    with pytest.raises(InvalidPayload, match="non-blank"):
        Actor.system(" ", CompanyId("c"))
