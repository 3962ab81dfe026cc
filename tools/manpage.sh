#!/bin/sh
# Writes tsq(1) from the program's own help text, so the two never disagree.
# usage: tools/manpage.sh PATH/TO/tsq VERSION
tsq=$1 version=$2
echo ".TH TSQ 1 \"\" \"tsq $version\" \"User Commands\""
echo ".SH NAME"
echo "tsq \\- run, inspect, simulate and transform ConfigMgr/MDT task sequences"
echo ".SH DESCRIPTION"
echo ".nf"
"$tsq" --help 2>&1 | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./'
echo ".fi"
