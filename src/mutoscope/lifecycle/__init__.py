"""The lifecycle room: model deprecation/shutdown schedules and the phased end of the whole service.

PUT HERE: schedules, the phase a date falls in, the headers that announce them
(RFC 9745 Deprecation, RFC 8594 Sunset, Link to the replacement), who may be deleted.
DO NOT PUT HERE: HTTP wiring (api/ adds the headers), plans and quotas (accounts/).
Rule of the room: nothing is deleted for a user who has not been offered an export
for the whole export window.
"""
