"""A supplier portal run on taskflow alone: every task kind of seed 001 between a buyer and a supplier.

ACME (the buyer) sends SupCo (the supplier) an agreement, an audit, an evaluation, a corrective
action (reopened once), a contact request, a general task and a questionnaire of five questions
(one delegated, three answered from the whole-questionnaire view, one sent back and answered
again). After each step it prints the inboxes and the received-questionnaires status.

Run: .venv/bin/python examples/supplier_portal.py
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import taskflow as tf
from taskflow import PDF, Actor, FileRef, NewTask, TaskId
from taskflow.kinds import agreement, audit, contact, corrective_action, evaluation, general
from taskflow.kinds.question import Question, QuestionType
from taskflow.kinds.questionnaire import Questionnaire

BUYER = Actor("beatrice", "acme", {"buyer"})
SUPPLIER = Actor("samuel", "supco")
COLLEAGUE = Actor("susan", "supco")
PEOPLE = (BUYER, SUPPLIER, COLLEAGUE)


def pdf(name: str, n: int) -> FileRef:
    return FileRef(name, PDF, 20_000 + n, f"sha256:{n:064x}", f"s3://portal/{n}")


class Portal:
    """The service, plus printing of whose inbox holds what."""

    def __init__(self) -> None:
        self.clock = tf.FixedClock(datetime(2026, 11, 23, 8, tzinfo=UTC))
        self.notifier = tf.RecordingNotifier()
        self.service = tf.TaskService(
            registry=tf.default_registry(),
            repository=tf.InMemoryRepository(),
            notifier=self.notifier,
            clock=self.clock,
            ids=tf.SequentialIds("t"),
        )

    def send(self, kind: str, subject: str, data: object) -> TaskId:
        draft = NewTask(subject, "supco", data, assignees=[SUPPLIER.ref])
        task = self.service.open(BUYER, kind, draft).task
        print(f"  sent {task.number} ({kind}): {subject}")
        return task.id

    def act(self, actor: Actor, task_id: TaskId, action: str, payload: object = None) -> None:
        self.clock.advance(timedelta(hours=1))
        task = self.service.act(actor, task_id, action, payload).task
        print(f"  {actor} {action} on {task.number} -> '{task.state}'")

    def inboxes(self, title: str) -> None:
        print(f"\n-- {title}")
        for person in PEOPLE:
            numbers = [f"{t.number}:{t.state}" for t in self.service.inbox(person)]
            print(f"   inbox of {person}: {', '.join(numbers) or '(empty)'}")

    def questionnaires(self) -> None:
        for row in tf.Questionnaires(self.service).received_questionnaires(SUPPLIER):
            print(
                f"   received questionnaire {row.number} '{row.title}': {row.progress} ({row.state})"
            )


def main() -> None:
    portal = Portal()
    service = portal.service

    print("== ACME sends its tasks ==")
    agreement_id = portal.send(
        "agreement",
        "Code of conduct 2027",
        agreement.Agreement("Code of conduct", pdf("code-of-conduct.pdf", 1)),
    )
    nda_id = portal.send(
        "agreement",
        "Non-disclosure agreement",
        agreement.Agreement("NDA", pdf("nda.pdf", 2), requires_signed_copy=True),
    )
    audit_id = portal.send("audit", "Quality audit 2026", audit.Audit("On-site quality audit"))
    evaluation_id = portal.send(
        "evaluation",
        "Supplier evaluation 2026",
        evaluation.Evaluation(
            82,
            (
                evaluation.Criterion("Delivery", 90, "On time, always"),
                evaluation.Criterion("Quality", 74, "Two lots rejected"),
            ),
            "A reliable supplier",
        ),
    )
    ca_id = portal.send(
        "corrective_action",
        "Rejected lot 4711",
        corrective_action.CorrectiveAction("Lot 4711: scratched housings", reference="NCR-0815"),
    )
    contact_id = portal.send(
        "contact", "Quality contact", contact.ContactRequest("Who handles quality claims?")
    )
    general_id = portal.send("general", "Price list 2027", general.GeneralRequest())
    portal.inboxes("after sending")

    print("\n== SupCo answers ==")
    portal.act(SUPPLIER, agreement_id, agreement.ACCEPT)
    portal.act(
        SUPPLIER, nda_id, agreement.UPLOAD_SIGNED, agreement.UploadSigned(pdf("nda-signed.pdf", 3))
    )
    portal.act(SUPPLIER, audit_id, audit.ADD_FILES, audit.AddFiles((pdf("audit-report.pdf", 4),)))
    portal.act(SUPPLIER, evaluation_id, evaluation.ACKNOWLEDGE)
    portal.act(
        SUPPLIER,
        ca_id,
        corrective_action.RESOLVE,
        corrective_action.Resolve("New packaging from lot 4712", root_cause="Loose packing"),
    )
    portal.act(
        SUPPLIER,
        contact_id,
        contact.SEND_CONTACT,
        contact.Contact("-", "-", "-", email="quality@supco.example", phone="+49 30 1234"),
    )
    portal.act(
        SUPPLIER, general_id, general.UPLOAD, general.UploadAnswer(pdf("prices-2027.pdf", 5))
    )
    portal.inboxes("after SupCo's answers")

    print("\n== ACME reviews ==")
    portal.act(BUYER, nda_id, agreement.ACCEPT_SIGNED)
    portal.act(BUYER, audit_id, audit.CLOSE)
    portal.act(
        BUYER,
        ca_id,
        corrective_action.REOPEN,
        corrective_action.Reopen("Lot 4713 arrived scratched too"),
    )
    portal.act(BUYER, contact_id, contact.ACCEPT)
    portal.act(BUYER, general_id, general.ACCEPT)
    portal.inboxes("after the review: the corrective action is back with SupCo")
    portal.act(
        SUPPLIER,
        ca_id,
        corrective_action.RESOLVE,
        corrective_action.Resolve("Foam inserts added to every box"),
    )
    portal.act(BUYER, ca_id, corrective_action.CLOSE)
    rounds = [e.action for e in service.get(BUYER, ca_id).history]
    print(f"  corrective action history: {' -> '.join(rounds)}")

    print("\n== A questionnaire of five questions ==")
    questions = (
        Question("Are you ISO 9001 certified?", QuestionType.YES_NO),
        Question("Number of employees", QuestionType.NUMBER),
        Question("Which markets do you serve?", QuestionType.MULTIPLE_CHOICE, ("EU", "US", "Asia")),
        Question("Date of your last external audit", QuestionType.DATE),
        Question("Describe your complaint handling", QuestionType.FREE_TEXT),
    )
    sent = tf.Questionnaires(service).send_questionnaire(
        BUYER,
        NewTask(
            "Supplier self-assessment",
            "supco",
            Questionnaire("Supplier self-assessment", questions),
            assignees=[SUPPLIER.ref],
        ),
    )
    qid = sent.questionnaire.id
    ids = [q.id for q in sent.questions]
    portal.questionnaires()
    tf.Questionnaires(service).delegate_question(
        SUPPLIER, ids[4], COLLEAGUE.ref, "You wrote the procedure"
    )
    print(f"  {SUPPLIER} delegates question 5 to {COLLEAGUE}")
    portal.inboxes("after the delegation")
    try:
        tf.Questionnaires(service).answer_questions(
            SUPPLIER, qid, {0: "yes", 1: "about 250", 2: ["EU", "US"]}
        )
    except tf.InvalidAnswers as refused:
        for error in refused.exceptions:
            print(f"  refused: {error} [{'; '.join(getattr(error, '__notes__', []))}]")
    tf.Questionnaires(service).answer_questions(SUPPLIER, qid, {1: "250"})
    print(f"  {SUPPLIER} answered questions 1-3 from the whole-questionnaire view")
    portal.questionnaires()
    tf.Questionnaires(service).answer_question(SUPPLIER, ids[3], "2026-03-15")
    print(f"  {SUPPLIER} answers question 4 from the inbox")
    portal.questionnaires()
    tf.Questionnaires(service).answer_question(
        COLLEAGUE, ids[4], "Claims are answered within 48 hours."
    )
    print(f"  {COLLEAGUE} answers question 5")
    portal.questionnaires()
    tf.Questionnaires(service).send_back_question(BUYER, ids[1], "Please count contractors too")
    print(f"  {BUYER} sends question 2 back")
    portal.questionnaires()
    portal.inboxes("question 2 is back with SupCo")
    tf.Questionnaires(service).answer_question(SUPPLIER, ids[1], 310)
    for question_id in ids:
        tf.Questionnaires(service).accept_answer(BUYER, question_id)
    print(f"  {SUPPLIER} answers question 2 again; {BUYER} accepts every answer")
    portal.questionnaires()
    portal.inboxes("at the end")
    print(f"\nACME's dashboard: {service.dashboard(BUYER).counts}")


if __name__ == "__main__":
    main()
