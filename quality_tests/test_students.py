"""Gates written as plain Python tests: the fixtures plus ``qagate.assert_gate``.

Use this form when a rule needs code (a loop, a computed threshold, a custom metric); a failed
``assert_gate`` prints the same report as a rule in a gate file.
"""

from __future__ import annotations

import qagate


def test_students_are_smaller_than_the_teacher(students, teacher, qagate_eval):
    teacher_result = qagate_eval(teacher)
    for student in students:
        qagate.assert_gate("parameter_count <= 0.8 * teacher", qagate_eval(student), teacher=teacher_result)


def test_students_answer_faster_than_the_teacher(students, teacher, qagate_latency):
    teacher_latency = qagate_latency(teacher)
    for student in students:
        qagate.assert_gate(
            "speedup >= 1.5",
            {},
            model=student.name,
            latency=qagate_latency(student),
            teacher_latency=teacher_latency,
        )
