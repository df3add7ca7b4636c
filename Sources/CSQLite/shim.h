// The system SQLite (Debian: libsqlite3-dev), for the SDK's on-disk buffer.
#include <sqlite3.h>
