; Bodies that hold only clauses: a fill before their first clause must start one.
; @clauses: the body (clauses are its named children after its "{", if it has one);
; starts: the texts a clause begins with, separated by "|".
([(expression_switch_statement) (type_switch_statement) (select_statement)] @clauses
  (#set! starts "case |default"))
