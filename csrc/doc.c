/* doc.c - the package fields of wrapped documents (PackageID, Name, Description, ...).
 * A console export's fields are its CIM <PROPERTY NAME=".."><VALUE> elements (the
 * system properties "__..." and the Sequence itself excepted); a <SmsTaskSequencePackage>
 * file's are the child elements of its root other than <SequenceData>. */
#include "tsq_int.h"

tsq_wrapper tsq_doc_wrapper(const tsq_node *seq) {
    return seq && seq->doc ? seq->doc->wrapper : TSQ_WRAP_NONE;
}

const char *tsq_doc_path(const tsq_node *seq) { return seq && seq->doc ? seq->doc->path : NULL; }

/* The i-th field element (or the one named `name` when name != NULL); its name in *fname. */
static tsq_node *field_at(const tsq_node *seq, size_t index, const char *name, const char **fname) {
    const tsq_doc *d = seq->doc;
    if (!d || !d->outer) return NULL;
    tsq_ctx *ctx = seq->ctx;
    size_t k = 0;
    for (tsq_node *e = tsq_elem_first(d->outer); e; e = tsq_elem_next(e)) {
        const char *fn;
        tsq_node *holder;
        if (d->wrapper == TSQ_WRAP_CIM) {
            if (e->name != ctx->atom[A_PROPERTY]) continue; /* PROPERTY.ARRAY and the rest are not fields */
            fn = tsq_attr_get(e, ctx->atom[A_NAME]);
            if (!fn || (fn[0] == '_' && fn[1] == '_') || strcmp(fn, "Sequence") == 0) continue;
            holder = e;
        } else {
            if (e == d->slot) continue;
            fn = e->name;
            holder = e;
        }
        if (name ? strcmp(fn, name) == 0 : k == index) {
            *fname = fn;
            return holder;
        }
        k++;
    }
    return NULL;
}

size_t tsq_doc_field_count(const tsq_node *seq) {
    size_t k = 0;
    const char *fn;
    while (field_at(seq, k, NULL, &fn)) k++;
    return k;
}

const char *tsq_doc_field_name(const tsq_node *seq, size_t index) {
    const char *fn = NULL;
    return field_at(seq, index, NULL, &fn) ? fn : NULL;
}

const char *tsq_doc_field(const tsq_node *seq, const char *name) {
    const char *fn;
    tsq_node *e = field_at(seq, 0, name, &fn);
    if (!e) return NULL;
    if (seq->doc->wrapper == TSQ_WRAP_CIM) {
        e = tsq_elem_child(e, seq->ctx->atom[A_VALUE]);
        if (!e) return NULL; /* a null property */
    }
    return e->text ? e->text : "";
}

tsq_status tsq_doc_set_field(tsq_node *seq, const char *name, const char *value, tsq_error *err) {
    const char *fn;
    tsq_node *e = field_at(seq, 0, name, &fn);
    if (!e) {
        if (!seq->doc || seq->doc->wrapper == TSQ_WRAP_NONE)
            return tsq_err(err, TSQ_ESTATE, "a plain <sequence> document has no package fields");
        return tsq_err(err, TSQ_ENOTFOUND, "the package has no field '%s'", name);
    }
    if (!value) value = "";
    if (seq->doc->wrapper == TSQ_WRAP_CIM) {
        tsq_node *v = tsq_elem_child(e, seq->ctx->atom[A_VALUE]);
        if (!v) {
            if (!(v = tsq_node_alloc(seq->ctx, N_ELEM, seq->ctx->atom[A_VALUE]))) return tsq_err(err, TSQ_ENOMEM, "out of memory");
            if (tsq_elem_insert(e, NULL, v) != TSQ_OK) {
                tsq_node_destroy(v);
                return tsq_err(err, TSQ_ENOMEM, "out of memory");
            }
        }
        e = v;
    }
    if (tsq_node_set_text(e, value, strlen(value)) != TSQ_OK) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    return TSQ_OK;
}
