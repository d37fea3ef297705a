#include "agent/apimap/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <fmt/format.h>

namespace vigil::apimap {
namespace {

Status bind_exec(sqlite3* db, sqlite3_stmt* st, const std::string& a, const std::string& b, const std::string& path) {
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, a.data(), static_cast<int>(a.size()), SQLITE_TRANSIENT);
  if (sqlite3_bind_parameter_count(st) > 1)
    sqlite3_bind_text(st, 2, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return Error{fmt::format("inventory store {}: {}", path, sqlite3_errmsg(db))};
  return {};
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = fmt::format("inventory store {}: {}", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return Error{msg};
  }
  std::unique_ptr<Store> s(new Store(db, path));
  ::chmod(path.c_str(), 0600);  // endpoint names, callers and findings: root's business
  sqlite3_busy_timeout(db, 2000);
  int version = -1;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (version < 0)
    return Error{fmt::format("inventory store {}: not a SQLite database ({})", path, sqlite3_errmsg(db))};
  if (version > kStoreSchemaVersion)
    return Error{fmt::format("inventory store {}: schema version {} is newer than this vigild's ({}); move the file "
                             "away or upgrade vigild",
                             path, version, kStoreSchemaVersion)};
  if (auto r = s->exec("PRAGMA journal_mode=WAL"); !r) return r.error();
  if (auto r = s->exec("PRAGMA synchronous=NORMAL"); !r) return r.error();
  if (auto r = s->exec("CREATE TABLE IF NOT EXISTS endpoints(key TEXT PRIMARY KEY, doc TEXT NOT NULL);"
                       "CREATE TABLE IF NOT EXISTS findings(key TEXT PRIMARY KEY, doc TEXT NOT NULL);"
                       "CREATE TABLE IF NOT EXISTS services(name TEXT PRIMARY KEY, doc TEXT NOT NULL);"
                       "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);");
      !r)
    return r.error();
  if (auto r = s->exec(fmt::format("PRAGMA user_version={}", kStoreSchemaVersion).c_str()); !r) return r.error();
  if (auto r = s->prepare(); !r) return r.error();
  return s;
}

Store::~Store() {
  for (auto* st : {put_endpoint_, del_endpoint_, put_finding_, put_service_, put_meta_}) sqlite3_finalize(st);
  sqlite3_close(db_);
}

Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = fmt::format("inventory store {}: {}", path_, err ? err : sqlite3_errmsg(db_));
    sqlite3_free(err);
    return Error{msg};
  }
  return {};
}

Status Store::prepare() {
  struct {
    sqlite3_stmt** st;
    const char* sql;
  } all[] = {
      {&put_endpoint_, "INSERT OR REPLACE INTO endpoints(key, doc) VALUES(?1, ?2)"},
      {&del_endpoint_, "DELETE FROM endpoints WHERE key = ?1"},
      {&put_finding_, "INSERT OR REPLACE INTO findings(key, doc) VALUES(?1, ?2)"},
      {&put_service_, "INSERT OR REPLACE INTO services(name, doc) VALUES(?1, ?2)"},
      {&put_meta_, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)"},
  };
  for (auto& s : all)
    if (sqlite3_prepare_v2(db_, s.sql, -1, s.st, nullptr) != SQLITE_OK)
      return Error{fmt::format("inventory store {}: {}", path_, sqlite3_errmsg(db_))};
  return {};
}

Result<Store::Loaded> Store::load() {
  Loaded out;
  auto rows = [&](const char* sql, auto&& on_row) -> Status {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      return Error{fmt::format("inventory store {}: {}", path_, sqlite3_errmsg(db_))};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      auto text = [&](int col) {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
        return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, col)));
      };
      on_row(text(0), text(1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return Error{fmt::format("inventory store {}: {}", path_, sqlite3_errmsg(db_))};
    return {};
  };
  if (auto s = rows("SELECT key, doc FROM endpoints", [&](const std::string&, const std::string& doc) {
        auto e = Endpoint::from_json(nlohmann::json::parse(doc, nullptr, false));
        if (e) out.endpoints.push_back(std::move(*e));
        else ++out.skipped;
      });
      !s)
    return s.error();
  if (auto s = rows("SELECT key, doc FROM findings", [&](const std::string&, const std::string& doc) {
        auto f = Finding::from_json(nlohmann::json::parse(doc, nullptr, false));
        if (f) out.findings.push_back(std::move(*f));
        else ++out.skipped;
      });
      !s)
    return s.error();
  if (auto s = rows("SELECT name, doc FROM services", [&](const std::string& name, const std::string& doc) {
        auto j = nlohmann::json::parse(doc, nullptr, false);
        if (!j.is_object()) return void(++out.skipped);
        ServiceStats st;
        st.exe = j.value("exe", "");
        st.unmatched_404 = j.value("unmatched_404", uint64_t{0});
        out.services[name] = st;
      });
      !s)
    return s.error();
  if (auto s = rows("SELECT k, v FROM meta WHERE k = 'collapsed'", [&](const std::string&, const std::string& v) {
        auto j = nlohmann::json::parse(v, nullptr, false);
        if (j.is_array())
          for (const auto& c : j)
            if (c.is_string()) out.collapsed.push_back(c.get<std::string>());
      });
      !s)
    return s.error();
  return out;
}

Result<size_t> Store::save(const Inventory::Changes& c) {
  if (c.endpoints.empty() && c.removed.empty() && c.findings.empty() && c.services.empty() && c.collapsed.empty())
    return size_t{0};
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s.error();
  size_t rows = 0;
  auto fail = [&](const Error& e) -> Result<size_t> {
    (void)exec("ROLLBACK");
    return e;
  };
  for (const auto& k : c.removed) {
    if (auto s = bind_exec(db_, del_endpoint_, k, {}, path_); !s) return fail(s.error());
    ++rows;
  }
  for (const Endpoint* e : c.endpoints) {
    if (auto s = bind_exec(db_, put_endpoint_, e->key(), e->to_json().dump(), path_); !s) return fail(s.error());
    ++rows;
  }
  for (const Finding* f : c.findings) {
    if (auto s = bind_exec(db_, put_finding_, f->key(), f->to_json().dump(), path_); !s) return fail(s.error());
    ++rows;
  }
  for (const auto& [name, st] : c.services) {
    if (auto s = bind_exec(db_, put_service_, name, st->to_json(name).dump(), path_); !s) return fail(s.error());
    ++rows;
  }
  if (!c.collapsed.empty()) {
    if (auto s = bind_exec(db_, put_meta_, "collapsed", nlohmann::json(c.collapsed).dump(), path_); !s)
      return fail(s.error());
    ++rows;
  }
  if (auto s = exec("COMMIT"); !s) return fail(s.error());
  return rows;
}

}  // namespace vigil::apimap
