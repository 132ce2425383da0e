; Bodies that hold only clauses: a fill before their first clause must start one.
; @clauses: the body (clauses are its named children after its "{", if it has one);
; starts: the texts a clause begins with, separated by "|".
((switch_body) @clauses (#set! starts "case |default"))
