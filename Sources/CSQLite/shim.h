// Debian's SQLite (libsqlite3-dev at build time, libsqlite3-0 at run time): the state database.
// Used through its C API by SundialRuntime/State/SQLiteConnection.swift. The transient
// destructor is a macro Swift cannot import, so it is spelled here as a typed constant.
#include <sqlite3.h>

static const sqlite3_destructor_type sundial_sqlite_transient = (sqlite3_destructor_type)-1;
