import qagate


def test_students_keep_95_percent(students, teacher, qagate_eval):
    for student in students:
        qagate.assert_gate("exact_match >= 0.95 * teacher", qagate_eval(student), teacher=qagate_eval(teacher))
