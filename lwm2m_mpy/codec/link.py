"""CoRE link format (RFC 6690, content format 40) as LwM2M uses it for Register and Discover (Core §6.2.1, §6.3.5)."""


def put_link(w, path, attrs=None, first=False):
    """Append `</a/b/c>;k=v...` (with a leading comma unless first) to the coap Writer `w`."""
    s = "</" + "/".join([str(p) for p in path]) + ">"
    if not first:
        s = "," + s
    if attrs:
        for k in attrs:
            v = attrs[k]
            s += ";" + k if v is None else ";%s=%s" % (k, v)
    w.put(s.encode())
