"""The help desk as a state machine: intake, rules and the notification matrix over tickets.

Invariants: every rule fires at most once per trigger, nobody who is not a party to a ticket
is told anything, and a refused action changes nothing.
"""

from collections import Counter
from email.message import EmailMessage

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import taskflow as tf
from taskflow.automation import (
    AddTag,
    AssignTo,
    Automation,
    Condition,
    Notify,
    On,
    PostComment,
    Rule,
    SetField,
    Trigger,
)
from taskflow.domain.matrix import SEED_DEFAULTS, InMemoryPreferences, MatrixEntry
from taskflow.intake import Disposition, InMemoryContacts, Intake
from taskflow.kinds.payloads import Reopen

DESK = "acme"
ANN, BOB = tf.Actor("ann", DESK), tf.Actor("bob", DESK)
CUSTOMERS = {
    "carl@cust.example": tf.Actor("carl", "cust"),
    "dora@kund.example": tf.Actor("dora", "kund"),
}
EVE = tf.UserRef("other", "eve")  # in the team lookup, but never a party to any ticket
MALLORY = tf.Actor("mallory", "evil")
PEOPLE = Condition.eq("event.actor.system", False)

RULES = (
    Rule("assign", Trigger(On.OPENED), (AssignTo(["ann"]), AddTag("new")), condition=PEOPLE),
    Rule("ack", Trigger(On.OPENED), (Notify("$number received", to={"requester"}),)),
    Rule(
        "reopened",
        Trigger(On.ACTION, "reopen"),
        (SetField("priority", "high"), Notify("$number reopened", to={"assignees"})),
    ),
    Rule(
        "tell",
        Trigger(On.COMMENTED),
        (Notify("$number: new comment", to={"assignees", "watchers"}),),
        condition=PEOPLE,
    ),
    Rule(
        "closing_note",
        Trigger(On.STATE_ENTERED, "resolved"),
        (PostComment("Closed $number", visibility="internal"),),
    ),
)
# History entries each rule's firing may write at most (its actions that change the task).
CHANGES_PER_FIRING = {"assign": 2, "ack": 0, "reopened": 1, "tell": 0, "closing_note": 1}


def _mail(sender, subject, body, msgid, *, reply_to=None, references=(), auto=False):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "help@acme.example"
    message["Subject"] = subject
    message["Message-ID"] = msgid
    if reply_to is not None:
        message["In-Reply-To"] = reply_to
    if references:
        message["References"] = " ".join(references)
    if auto:
        message["Auto-Submitted"] = "auto-replied"
    message.set_content(body)
    return message.as_bytes()


class HelpDesk(RuleBasedStateMachine):
    """Customers mail and reply, agents answer and resolve, rules and the matrix react."""

    tickets = Bundle("tickets")
    mails = Bundle("mails")

    @initialize()
    def start(self):
        registry = tf.default_registry()
        self.prefs = InMemoryPreferences()
        self.prefs.opt_out(BOB.ref, "support_ticket", "commented")
        matrix = tf.NotificationMatrix(
            [*SEED_DEFAULTS, MatrixEntry("support_ticket", "opened", {"team", "requester"})],
            preferences=self.prefs,
            team=lambda task: [ANN.ref, BOB.ref, EVE],
        )
        self.service = tf.TaskService(
            registry=registry,
            repository=tf.InMemoryRepository(registry=registry),
            notifier=tf.RecordingNotifier(),
            clock=tf.FixedClock(),
            ids=tf.SequentialIds(),
            policy=matrix,
        )
        self.automation = Automation(self.service, RULES, company=DESK, roles={"agent"})
        self.intake = Intake(
            self.service,
            kind="support_ticket",
            recipient=DESK,
            contacts=InMemoryContacts(CUSTOMERS),
        )
        self.sent_mails = 0
        self.opened: Counter[str] = Counter()  # ticket id -> opening units of work (1)

    # --- helpers -------------------------------------------------------------------------------

    def _snapshot(self):
        repo = self.service.repository
        tasks = {t.id: t for t in repo.query(tf.TaskQuery())}
        return tasks, len(repo.pending()), len(self.service.notifier.sent)

    def _new_id(self):
        self.sent_mails += 1
        return f"<m{self.sent_mails}@mail.example>"

    # --- customers -----------------------------------------------------------------------------

    @rule(
        target=mails,
        address=st.sampled_from(sorted(CUSTOMERS)),
        subject=st.sampled_from(["Jam", "Login"]),
    )
    def customer_mails(self, address, subject):
        msgid = self._new_id()
        raw = _mail(address, subject, f"{subject} is broken", msgid)
        result = self.intake.receive_email(raw)
        assert result.disposition is Disposition.OPENED
        self.opened[result.task_id] += 1
        return (raw, msgid, result.task_id, (msgid,))

    @rule(target=mails, mail=mails, address=st.sampled_from(sorted(CUSTOMERS)))
    def customer_replies(self, mail, address):
        _, msgid, task_id, chain = mail
        before = self.service.repository.get(task_id)
        reply_id = self._new_id()
        # As mail clients do (RFC 5322): In-Reply-To the mail answered, References the chain.
        raw = _mail(address, "Re: it", "still broken", reply_id, reply_to=msgid, references=chain)
        result = self.intake.receive_email(raw)
        party = CUSTOMERS[address].company == before.requester.company
        if not party:  # a stranger's reply threads onto nothing: a ticket of their own
            assert result.disposition is Disposition.OPENED
            self.opened[result.task_id] += 1
        elif before.is_open:
            assert result.disposition is Disposition.APPENDED
        else:  # the customer's reply to a resolved ticket reopens it
            assert result.disposition is Disposition.REOPENED
            assert self.service.repository.get(task_id).state == "reopened"
        if not party:
            return (raw, reply_id, result.task_id, (reply_id,))
        return (raw, reply_id, result.task_id, (*chain, reply_id))

    @rule(mail=mails)
    def a_mail_is_delivered_again(self, mail):
        before = self._snapshot()
        result = self.intake.receive_email(mail[0])
        assert result.disposition is Disposition.DUPLICATE
        assert self._snapshot() == before

    @rule(mail=mails)
    def an_auto_reply_arrives(self, mail):
        before = self._snapshot()
        raw = _mail(
            "carl@cust.example",
            "Out of office",
            "away",
            self._new_id(),
            reply_to=mail[1],
            auto=True,
        )
        assert self.intake.receive_email(raw).disposition is Disposition.IGNORED
        assert self._snapshot() == before

    @rule(mail=mails)
    def customer_replies_in_the_portal(self, mail):
        task = self.service.repository.get(mail[2])
        customer = tf.Actor(task.requester.user, task.requester.company)
        result = self.intake.reply(customer, task.id, "any news?")
        expected = Disposition.APPENDED if task.is_open else Disposition.REOPENED
        assert result.disposition is expected

    # --- agents --------------------------------------------------------------------------------

    @rule(mail=mails, agent=st.sampled_from([ANN, BOB]), internal=st.booleans())
    def agent_comments(self, mail, agent, internal):
        seen = tf.Visibility.INTERNAL if internal else tf.Visibility.PUBLIC
        self.service.comment(agent, mail[2], "looking", seen)

    @rule(mail=mails)
    def agent_resolves(self, mail):
        if "resolve" in self.service.allowed_actions(ANN, mail[2]):
            self.service.act(ANN, mail[2], "resolve")

    @rule(
        mail=mails,
        attempt=st.sampled_from(["customer_resolves", "agent_reopens", "stranger_comments"]),
    )
    def a_refused_action_changes_nothing(self, mail, attempt):
        task = self.service.repository.get(mail[2])
        customer = tf.Actor(task.requester.user, task.requester.company)
        before = self._snapshot()
        try:
            if attempt == "customer_resolves":
                self.service.act(customer, task.id, "resolve")
            elif attempt == "agent_reopens":
                self.service.act(ANN, task.id, "reopen", Reopen("no"))
            else:
                self.service.comment(MALLORY, task.id, "hello")
        except tf.TaskflowError:
            pass
        else:
            raise AssertionError(f"{attempt} on {task.number} ({task.state}) was not refused")
        assert self._snapshot() == before

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def nobody_but_a_party_is_told(self):
        repo = self.service.repository
        for note in self.service.notifier.sent:
            task = repo.get(note.task_id)
            assert task.is_party(note.recipient.company), note
            assert note.recipient != EVE

    @invariant()
    def an_opted_out_user_hears_of_no_comment(self):
        assert not [
            n
            for n in self.service.notifier.sent
            if n.recipient == BOB.ref and n.event == "commented"
        ]

    @invariant()
    def every_rule_fires_at_most_once_per_trigger(self):
        repo = self.service.repository
        for task_id in self.opened:
            task = repo.get(task_id)
            causes = {f"{task.id}@{i + 1}": e.cause for i, e in enumerate(task.history)}
            per_trigger: Counter[tuple[str, object]] = Counter()
            for entry in task.history:
                if not entry.actor.is_system or entry.cause is None or entry.cause.event_id is None:
                    continue
                rule_name = str(entry.actor.user).removeprefix("rule:")
                trigger = causes.get(entry.cause.event_id.split("/", 1)[0])
                per_trigger[(rule_name, trigger)] += 1
            for (rule_name, _), count in per_trigger.items():
                assert count <= CHANGES_PER_FIRING[rule_name], (rule_name, count, task.number)
            # Notify-only rules leave no history: count what they told, per trigger.
            told = Counter(
                (n.event, n.recipient) for n in self.service.notifier.sent if n.task_id == task_id
            )
            assert told[("rule:ack", task.requester)] == self.opened[task_id]
            comments = {
                e.cause for e in task.history if e.action == "comment" and not e.actor.is_system
            }
            for (event, _), count in told.items():
                if event == "rule:tell":
                    assert count <= len(comments), (task.number, count, len(comments))


TestHelpDesk = HelpDesk.TestCase
TestHelpDesk.settings = settings(stateful_step_count=25, deadline=None, max_examples=30)
