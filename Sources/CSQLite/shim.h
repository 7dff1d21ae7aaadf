#ifndef SIYU_CSQLITE_SHIM_H
#define SIYU_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
