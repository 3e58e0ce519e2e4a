/* SPDX-License-Identifier: MIT */
/* YAML text to a document: libyaml's events composed into nodes that keep their file:line:column
 * marks, with the jobs list checked item by item as it is read; and which drop-in files there are. */
#include <glob.h>
#include <limits.h>
#include <sys/stat.h>
#include <yaml.h>

#include "basic/trust.h"
#include "core/registry-internal.h"

/* A registry is written by people; anything bigger than this is a mistake, not a registry. */
#define REGISTRY_FILE_MAX (16U * 1024U * 1024U)

yaml_node_t *node_get(source *s, int id) {
        return yaml_document_get_node(&s->doc, id);
}

const char *node_scalar(const yaml_node_t *n) {
        return (const char *) n->data.scalar.value;
}

/* An empty plain value ("key:" with nothing after it), or an explicit null. */
bool node_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = node_scalar(n);
        return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

/* "a mapping", "a sequence" or the quoted scalar, for "found ..." in messages. */
char *node_describe(const yaml_node_t *n) {
        char *s = NULL;

        switch (n->type) {
        case YAML_MAPPING_NODE:
                return strdup("a mapping");
        case YAML_SEQUENCE_NODE:
                return strdup("a sequence");
        case YAML_SCALAR_NODE:
                if (node_is_null(n))
                        return strdup("an empty value");
                if (asprintf(&s, "\"%s\"", node_scalar(n)) < 0)
                        return NULL;
                return s;
        default:
                return strdup("nothing");
        }
}

/* Whether the scalar's text is, byte for byte, in the file at its mark on one line, so that an
 * offset into its value is also an offset into the line (plain, or quoted without escapes). */
static size_t utf8_chars(const char *p, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n && p[i]; i++)
                c += ((unsigned char) p[i] & 0xC0) != 0x80;
        return c;
}

unsigned scalar_column_at(source *s, const yaml_node_t *n, size_t offset) {
        unsigned col = (unsigned) n->start_mark.column + 1;
        const char *v = node_scalar(n);
        size_t len = n->data.scalar.length, lead;
        yaml_scalar_style_t style = n->data.scalar.style;

        if (n->start_mark.line != n->end_mark.line || offset > len)
                return col;
        if (style == YAML_PLAIN_SCALAR_STYLE)
                lead = 0;
        else if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                lead = 1;
        else
                return col;

        /* libyaml marks count characters; find the line's byte offset of the mark. */
        size_t pos = 0;
        for (size_t line = 0; line < n->start_mark.line && pos < s->size; pos++)
                if (s->text[pos] == '\n')
                        line++;
        for (size_t c = 0; c < n->start_mark.column && pos < s->size; c++) {
                pos++;
                while (pos < s->size && ((unsigned char) s->text[pos] & 0xC0) == 0x80)
                        pos++;
        }
        if (pos + lead + len > s->size || memcmp(s->text + pos + lead, v, len) != 0)
                return col;
        if (lead && (pos + lead + len >= s->size || s->text[pos + lead + len] != s->text[pos]))
                return col;
        return col + (unsigned) lead + (unsigned) utf8_chars(v, offset);
}

/* ---- files ----------------------------------------------------------------------------- */

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;

        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (st.st_size > (off_t) REGISTRY_FILE_MAX)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, (size_t) st.st_size + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > (size_t) st.st_size)
                return -EFBIG; /* grew while we read it */
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* Line and column (1-based) of byte OFFSET, for libyaml reader errors that only give an offset. */
static void offset_to_position(const source *s, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < offset && i < s->size; i++) {
                if (s->text[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char) s->text[i] & 0xC0) != 0x80)
                        col++;
        }
        *ret_line = line;
        *ret_column = col;
}

static void report_yaml_error(loader *l, source *s, const yaml_parser_t *p) {
        unsigned line, col;

        if (p->error == YAML_MEMORY_ERROR)
                return loader_oom(l);
        if (p->error == YAML_READER_ERROR) {
                offset_to_position(s, p->problem_offset, &line, &col);
                if (p->problem_value >= 0)
                        loader_report(l, s->file, line, col, NULL, "invalid YAML: %s (byte 0x%02X); expected UTF-8 text",
                               p->problem ?: "unreadable input", (unsigned) p->problem_value);
                else
                        loader_report(l, s->file, line, col, NULL, "invalid YAML: %s; expected UTF-8 text",
                               p->problem ?: "unreadable input");
                return;
        }
        line = (unsigned) p->problem_mark.line + 1;
        col = (unsigned) p->problem_mark.column + 1;
        if (p->context)
                loader_report(l, s->file, line, col, NULL, "invalid YAML: %s (%s at line %u, column %u); expected well-formed YAML",
                       p->problem ?: "syntax error", p->context, (unsigned) p->context_mark.line + 1,
                       (unsigned) p->context_mark.column + 1);
        else
                loader_report(l, s->file, line, col, NULL, "invalid YAML: %s; expected well-formed YAML",
                       p->problem ?: "syntax error");
}

/* ---- composing ----------------------------------------------------------------------------
 * The document is built from libyaml's events, with the nodes, marks and errors
 * yaml_parser_load() would give, except that each item of the jobs list is checked as soon as
 * it is complete and then freed: the whole tree of a 100,000-job registry took more memory than
 * the registry itself. The jobs list is read this way when nothing it needs can come after it:
 * in a drop-in always, in the main file when the scheduler section came first. */

static void nodes_free(source *s, int from_id) {
        if (!s->doc.nodes.start)
                return;
        for (yaml_node_t *n = s->doc.nodes.start + from_id - 1; n < s->doc.nodes.top; n++) {
                if (n->type == YAML_SCALAR_NODE)
                        free(n->data.scalar.value);
                else if (n->type == YAML_SEQUENCE_NODE)
                        free(n->data.sequence.items.start);
                else if (n->type == YAML_MAPPING_NODE)
                        free(n->data.mapping.pairs.start);
        }
        s->doc.nodes.top = s->doc.nodes.start + from_id - 1;
}

void source_done(source *s) {
        nodes_free(s, 1);
        free(s->doc.nodes.start);
        s->doc = (yaml_document_t) {};
        s->have_doc = false;
        for (size_t i = 0; i < s->n_anchors; i++)
                free(s->anchors[i].name);
        free(s->anchors);
        s->anchors = NULL;
        s->n_anchors = 0;
        free(s->text);
        s->text = NULL;
}

/* Appends N (whose strings S now owns) and returns its id, or -ENOMEM. */
static int node_push(source *s, const yaml_node_t *n) {
        yaml_document_t *d = &s->doc;
        if (d->nodes.top == d->nodes.end) {
                size_t used = (size_t) (d->nodes.top - d->nodes.start), cap = used ? used * 2 : 64;
                if (cap > INT_MAX)
                        return -ENOMEM;
                yaml_node_t *t = realloc(d->nodes.start, cap * sizeof(yaml_node_t));
                if (!t)
                        return -ENOMEM;
                d->nodes = (typeof(d->nodes)) { .start = t, .top = t + used, .end = t + cap };
        }
        *d->nodes.top++ = *n;
        return (int) (d->nodes.top - d->nodes.start);
}

/* Grows the item or pair array of a container node by one slot; returns it or NULL. */
static void *slot_push(void **start, void **top, void **end, size_t size) {
        size_t used = (size_t) ((char *) *top - (char *) *start) / size;
        if (*top == *end) {
                size_t cap = used ? used * 2 : 4;
                char *t = realloc(*start, cap * size);
                if (!t)
                        return NULL;
                *start = t;
                *end = t + cap * size;
        }
        void *slot = (char *) *start + used * size;
        *top = (char *) slot + size;
        return slot;
}

static int composer_error(yaml_parser_t *p, const char *context, yaml_mark_t context_mark, const char *problem,
                          yaml_mark_t problem_mark) {
        p->error = YAML_COMPOSER_ERROR;
        p->context = context;
        p->context_mark = context_mark;
        p->problem = problem;
        p->problem_mark = problem_mark;
        return -EINVAL;
}

/* Remembers anchor NAME (taken over) for node ID; a second anchor of the same name is an error,
 * as for yaml_parser_load(). */
static int anchor_add(source *s, yaml_parser_t *p, char *name, int id) {
        if (!name)
                return 0;
        for (size_t i = 0; i < s->n_anchors; i++)
                if (streq(s->anchors[i].name, name)) {
                        free(name);
                        return composer_error(p, "found duplicate anchor; first occurence",
                                              s->doc.nodes.start[s->anchors[i].id - 1].start_mark,
                                              "second occurence", s->doc.nodes.start[id - 1].start_mark);
                }
        anchor *t = realloc(s->anchors, (s->n_anchors + 1) * sizeof(anchor));
        if (!t) {
                free(name);
                return -ENOMEM;
        }
        s->anchors = t;
        s->anchors[s->n_anchors++] = (anchor) { .name = name, .id = id };
        return 0;
}

static int next_event(yaml_parser_t *p, yaml_event_t *ev) {
        if (!yaml_parser_parse(p, ev))
                return p->error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        return 0;
}

typedef enum compose_role {
        NODE_PLAIN,
        NODE_ROOT,
        NODE_JOBS, /* the jobs list, checked item by item */
} compose_role;

/* What a composed node stands for once its aliases are expanded, as its readers will walk it. */
typedef struct node_shape {
        uint64_t nodes;  /* saturating */
        unsigned height; /* 1 for a scalar */
} node_shape;

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int compose_node(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role, unsigned depth,
                        int *ret_id, node_shape *ret_shape);

/* Whether the value of root key K, starting with event EV, is the jobs list to check item by
 * item; in the main file this parses the scheduler section first. */
static bool stream_jobs(loader *l, source *s, int root_id, int key_id, const yaml_event_t *ev) {
        const yaml_node_t *k = &s->doc.nodes.start[key_id - 1];
        if (s->jobs_id || ev->type != YAML_SEQUENCE_START_EVENT || k->type != YAML_SCALAR_NODE ||
            !streq(node_scalar(k), "jobs"))
                return false;
        if (!s->main_file)
                return true;
        if (l->scheduler_done)
                return false;
        /* the first "jobs" key: anything before it is in the root mapping's pairs already */
        const yaml_node_t *root = &s->doc.nodes.start[root_id - 1];
        for (const yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++) {
                yaml_node_t *qk = node_get(s, q->key);
                if (qk && qk->type == YAML_SCALAR_NODE && streq(node_scalar(qk), "jobs"))
                        return false;
                if (qk && qk->type == YAML_SCALAR_NODE && streq(node_scalar(qk), "scheduler")) {
                        load_scheduler(l, s, node_get(s, q->value));
                        return true;
                }
        }
        return false;
}

/* An item of the jobs list is complete: check it, and drop its nodes unless an anchor in it
 * may still be referred to. */
static void stream_job(loader *l, source *s, int id) {
        parse_job(l, s, node_get(s, id), s->jobs_index++);
        for (size_t i = 0; i < s->n_anchors; i++)
                if (s->anchors[i].id >= id)
                        return;
        nodes_free(s, id);
}

static int compose_container(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role,
                             unsigned depth, int *ret_id, node_shape *ret_shape) {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        yaml_node_t n = {
                .type = mapping ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE,
                .start_mark = ev->start_mark,
                .end_mark = ev->end_mark,
        };
        char *anchor_name = (char *) (mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        node_shape shape = { .nodes = 1, .height = 1 };
        int id, q;

        if (depth > REGISTRY_DEPTH_MAX) {
                yaml_event_delete(ev);
                free(anchor_name);
                return composer_error(p, NULL, (yaml_mark_t) {},
                                      "nested deeper than " STRINGIFY(REGISTRY_DEPTH_MAX) " levels (an alias counts as deep as its anchor)",
                                      n.start_mark);
        }
        if (mapping) {
                n.data.mapping.style = ev->data.mapping_start.style;
                ev->data.mapping_start.anchor = NULL;
        } else {
                n.data.sequence.style = ev->data.sequence_start.style;
                ev->data.sequence_start.anchor = NULL;
        }
        yaml_event_delete(ev);
        id = node_push(s, &n);
        if (id < 0) {
                free(anchor_name);
                return id;
        }
        q = anchor_add(s, p, anchor_name, id);
        if (q < 0)
                return q;
        if (role == NODE_JOBS)
                s->jobs_id = id;

        for (;;) {
                yaml_event_t e;
                int key = 0, value;
                compose_role value_role = NODE_PLAIN;
                node_shape ks = {}, vs;

                q = next_event(p, &e);
                if (q < 0)
                        return q;
                if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                        s->doc.nodes.start[id - 1].end_mark = e.end_mark;
                        yaml_event_delete(&e);
                        break;
                }
                if (mapping) {
                        q = compose_node(l, s, p, &e, NODE_PLAIN, depth + 1, &key, &ks);
                        if (q < 0)
                                return q;
                        q = next_event(p, &e);
                        if (q < 0)
                                return q;
                        if (role == NODE_ROOT && stream_jobs(l, s, id, key, &e))
                                value_role = NODE_JOBS;
                }
                q = compose_node(l, s, p, &e, value_role, depth + 1, &value, &vs);
                if (q < 0)
                        return q;
                shape.nodes = add_sat(shape.nodes, add_sat(ks.nodes, vs.nodes));
                shape.height = MAX(shape.height, 1 + MAX(ks.height, vs.height));
                /* the node may have moved: the node array grows */
                yaml_node_t *self = &s->doc.nodes.start[id - 1];
                if (mapping) {
                        yaml_node_pair_t *slot = slot_push((void **) &self->data.mapping.pairs.start,
                                                           (void **) &self->data.mapping.pairs.top,
                                                           (void **) &self->data.mapping.pairs.end,
                                                           sizeof(yaml_node_pair_t));
                        if (!slot)
                                return -ENOMEM;
                        *slot = (yaml_node_pair_t) { .key = key, .value = value };
                } else if (role == NODE_JOBS)
                        stream_job(l, s, value);
                else {
                        yaml_node_item_t *slot = slot_push((void **) &self->data.sequence.items.start,
                                                           (void **) &self->data.sequence.items.top,
                                                           (void **) &self->data.sequence.items.end,
                                                           sizeof(yaml_node_item_t));
                        if (!slot)
                                return -ENOMEM;
                        *slot = value;
                }
        }
        for (size_t i = 0; i < s->n_anchors; i++)
                if (s->anchors[i].id == id)
                        s->anchors[i] = (anchor) { s->anchors[i].name, id, true, shape.nodes, shape.height };
        *ret_id = id;
        *ret_shape = shape;
        return 0;
}

/* Composes the node starting with event EV (consumed) and sets *RET_ID. Returns 0, -EINVAL
 * with P's error fields set, or -ENOMEM. */
static int compose_node(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role, unsigned depth,
                        int *ret_id, node_shape *ret_shape) {
        int id, q;

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                for (size_t i = 0; i < s->n_anchors; i++)
                        if (streq(s->anchors[i].name, (char *) ev->data.alias.anchor)) {
                                const anchor *a = &s->anchors[i];
                                yaml_mark_t at = ev->start_mark;
                                yaml_event_delete(ev);
                                if (!a->done)
                                        return composer_error(p, NULL, (yaml_mark_t) {},
                                                              "alias refers to a node that contains it (a cycle)", at);
                                if (depth - 1 + a->height > REGISTRY_DEPTH_MAX)
                                        return composer_error(p, NULL, (yaml_mark_t) {},
                                                              "nested deeper than " STRINGIFY(REGISTRY_DEPTH_MAX)
                                                              " levels (an alias counts as deep as its anchor)", at);
                                s->alias_nodes = add_sat(s->alias_nodes, a->nodes);
                                if (s->alias_nodes > REGISTRY_ALIAS_NODES_MAX)
                                        return composer_error(p, NULL, (yaml_mark_t) {},
                                                              "aliases expand to more than " STRINGIFY(REGISTRY_ALIAS_NODES_MAX)
                                                              " nodes in this file (each use counts all of its anchor)", at);
                                *ret_id = a->id;
                                *ret_shape = (node_shape) { a->nodes, a->height };
                                return 0;
                        }
                q = composer_error(p, NULL, (yaml_mark_t) {}, "found undefined alias", ev->start_mark);
                yaml_event_delete(ev);
                return q;
        case YAML_SCALAR_EVENT: {
                yaml_node_t n = {
                        .type = YAML_SCALAR_NODE,
                        .data.scalar = {
                                .value = ev->data.scalar.value,
                                .length = ev->data.scalar.length,
                                .style = ev->data.scalar.style,
                        },
                        .start_mark = ev->start_mark,
                        .end_mark = ev->end_mark,
                };
                char *anchor_name = (char *) ev->data.scalar.anchor;
                ev->data.scalar.value = NULL;
                ev->data.scalar.anchor = NULL;
                yaml_event_delete(ev);
                id = node_push(s, &n);
                if (id < 0) {
                        free(n.data.scalar.value);
                        free(anchor_name);
                        return id;
                }
                q = anchor_add(s, p, anchor_name, id);
                if (q < 0)
                        return q;
                if (anchor_name)
                        s->anchors[s->n_anchors - 1] = (anchor) { anchor_name, id, true, 1, 1 };
                *ret_id = id;
                *ret_shape = (node_shape) { 1, 1 };
                return 0;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                if (role == NODE_JOBS && ev->type != YAML_SEQUENCE_START_EVENT)
                        role = NODE_PLAIN;
                if (role == NODE_ROOT && ev->type != YAML_MAPPING_START_EVENT)
                        role = NODE_PLAIN;
                return compose_container(l, s, p, ev, role, depth, ret_id, ret_shape);
        default:
                yaml_event_delete(ev);
                return -EINVAL; /* the parser never gives anything else here */
        }
}

/* Composes the next document of P's stream into S, checking jobs items on the way if
 * CHECK_JOBS. Sets *RET_START_MARK to where the document starts. Returns 1 if there was a
 * document, 0 at the end of the stream, -EINVAL (P's error fields say why), -ENOMEM. */
static int compose_document(loader *l, source *s, yaml_parser_t *p, bool check_jobs, yaml_mark_t *ret_start_mark) {
        yaml_event_t ev;
        int q, root;

        q = next_event(p, &ev);
        if (q < 0)
                return q;
        if (ev.type == YAML_STREAM_START_EVENT) {
                yaml_event_delete(&ev);
                q = next_event(p, &ev);
                if (q < 0)
                        return q;
        }
        if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_NO_EVENT) { /* NO_EVENT: after the end */
                yaml_event_delete(&ev);
                return 0;
        }
        *ret_start_mark = ev.start_mark;
        yaml_event_delete(&ev); /* DOCUMENT-START */
        q = next_event(p, &ev);
        if (q < 0)
                return q;
        node_shape shape;
        q = compose_node(l, s, p, &ev, check_jobs ? NODE_ROOT : NODE_PLAIN, 1, &root, &shape);
        if (q < 0)
                return q;
        q = next_event(p, &ev); /* DOCUMENT-END */
        if (q < 0)
                return q;
        yaml_event_delete(&ev);
        return 1;
}

/* Refuses (reports, -EINVAL) a registry file others could have written: basic/trust.h. The
 * registry named on the command line may be a symbolic link and sit in a sticky directory; a
 * drop-in, found by listing its directory, may not. */
static int trust_check_source(loader *l, const char *file, bool main_file) {
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r = trust_open_file(file, main_file ? TRUST_FOLLOW | TRUST_STICKY_HOLDER : 0, &fd, &why);
        if (r == -EPERM)
                loader_report(l, file, 0, 0, NULL, "refused: %s", why);
        return r == -EPERM ? -EINVAL : r == -ENOMEM ? r : 0; /* other errors: read_file() says them */
}

int source_load(loader *l, source *s, const char *file, bool main_file) {
        size_t n_diags = l->diags->n, n_jobs = l->reg->n_jobs;
        yaml_parser_t p;
        yaml_mark_t start = {};
        int r;

        *s = (source) { .file = file, .main_file = main_file };
        r = trust_check_source(l, file, main_file);
        if (r < 0)
                return r;
        r = read_file(file, &s->text, &s->size);
        if (r < 0)
                return r;

        if (!yaml_parser_initialize(&p)) {
                loader_oom(l);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&p, (const unsigned char *) s->text, s->size);
        r = compose_document(l, s, &p, true, &start);
        if (r < 0) {
                jobs_undo(l, n_diags, n_jobs);
                if (r == -ENOMEM)
                        loader_oom(l);
                else
                        report_yaml_error(l, s, &p);
                yaml_parser_delete(&p);
                return r;
        }
        s->have_doc = true;

        /* One document per file: a second one would be silently ignored otherwise. */
        source extra = { .file = file };
        r = compose_document(l, &extra, &p, false, &start);
        if (r != 0 && !main_file)
                jobs_undo(l, n_diags, n_jobs);
        if (r == -ENOMEM)
                loader_oom(l);
        else if (r < 0)
                report_yaml_error(l, s, &p);
        else if (r > 0) {
                loader_report(l, file, (unsigned) start.line + 1, (unsigned) start.column + 1, NULL,
                       "a second YAML document starts here; expected one document per file");
                r = -EINVAL;
        }
        source_done(&extra);
        yaml_parser_delete(&p);
        return r;
}

bool jobs_checked(const source *s, const yaml_node_t *n) {
        return s->jobs_id > 0 && n == s->doc.nodes.start + s->jobs_id - 1;
}

void loader_report_unreadable(loader *l, const char *file, int r) {
        if (r == -ENOMEM)
                return loader_oom(l);
        if (r == -EFBIG)
                loader_report(l, file, 0, 0, NULL, "file is larger than %u MiB; expected a registry file",
                       REGISTRY_FILE_MAX / 1024 / 1024);
        else
                loader_report(l, file, 0, 0, NULL, "cannot read: %s; expected a readable YAML file", strerror(-r));
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int dropins_glob(const char *pattern, glob_t *ret) {
        glob_t g = {};
        int r;

        r = glob(pattern, 0, NULL, &g);
        if (r != 0) {
                globfree(&g);
                /* no matches, or a directory that does not exist: nothing to include */
                return r == GLOB_NOSPACE ? -ENOMEM : -ENOENT;
        }
        qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), strcmp_ptr);
        *ret = g;
        return 0;
}
