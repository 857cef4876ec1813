"""Clinicians in the loop: cases that escalate a session to a person, the clinicians' queue,
their replies in the patient's chat (the hand-off), and the patient's side of it."""
