#!/usr/bin/env bash
# Ablation of the distillation recipe (issue 12): one row per ingredient, the same 3-layer
# student (teacher layers 0, 2, 4), data, schedule and seed; EM/F1 on held-out articles.
#
#   bench/ablation.sh                     # every row, resumable: rerun after an interruption
#   ROWS="logits hidden" bench/ablation.sh   # some rows
#   LIMIT=16 EVAL=38-38 bench/ablation.sh    # smoke test: 16 training questions, one held-out article
#
# Rows (each adds one ingredient to "logits", the DistilBERT-style baseline):
#   hard-labels     alpha 1: no teacher at all (the lower bound)
#   logits          soft start/end logits, T 2, alpha 0.5 (how the zoo student is trained)
#   hidden          + --hidden-loss (MSE of the embeddings' and mapped layers' hidden states)
#   attention       + --attention-loss (KL of the mapped layers' self-attention, per head)
#   value-relation  + --value-relation-loss (MiniLM's value relations, deepest mapped layer)
#   all             + all three
#   all-uniform     + all three with the uniform map 0:1,1:3,2:5 instead of the copied layers 0:0,1:2,2:4
#   longer          logits, twice the epochs (a longer schedule)
#   augment         logits on the questions plus one perturbed copy of each (--augment
#                   question_noise,swap_entities,reorder): the teacher's answers on new
#                   contexts, at the step count of "longer"
#
# Teacher: the demo zoo's MiniLM-L6 teacher, rebuilt from the packed zoo (or TEACHER=DIR, e.g.
# the one bench/train_zoo.sh trains). Data: the SQuAD v1.1 dev set in ../shared, articles 0-37
# train, 38-47 held out. Settings as bench/train_zoo.sh's 2-epoch ablation (lr 1e-4, batch 16,
# 256/96 windows, attention dropout 0, frozen embeddings, seed 42).
#
# Cost on 2 CPU cores (from bench/train_zoo.sh's timings): hard-labels ~20 min, logits ~26 min,
# each of the five rows with intermediate losses ~35 min (the teacher runs every step, ~1.4x per
# step), longer ~50 min: about 4.5 hours in all. Run it alone (two torch processes on 2 cores slow
# each other down more than tenfold). The table goes to $OUT/ablation.md.
# The README's table is the reduced budget EPOCHS=1 LIMIT=4300 (4-8 minutes a row, ~55 min in all).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
QAGATE=("$PY" -m qagate.cli)
SHARED=${QAGATE_SHARED:-../shared}
DATA=${DATA:-$SHARED/data/squad/dev-v1.1.json}
OUT=${OUT:-ablation}
THREADS=${THREADS:-2}
SEED=${SEED:-42}
EPOCHS=${EPOCHS:-2}
LR=${LR:-1e-4}
EVAL=${EVAL:-38-47}
HIDDEN_W=${HIDDEN_W:-1}
ATTENTION_W=${ATTENTION_W:-1}
VALUE_W=${VALUE_W:-1}
AUGMENT=${AUGMENT:-question_noise,swap_entities,reorder}
ROWS=${ROWS:-hard-labels logits hidden attention value-relation all all-uniform longer augment}
TEACHER=${TEACHER:-$("$PY" -c 'from qagate.inference.zoo import materialize, zoo_path
print(materialize(zoo_path("minilm6-squad-teacher")))')}

COMMON=(--teacher "$TEACHER" --student-layers 0,2,4 --train "$DATA" --articles 0-37 --eval-articles "$EVAL"
        --max-seq-len 256 --stride 96 --batch-size 16 --lr "$LR" --warmup-ratio 0.1 --weight-decay 0.01
        --attention-dropout 0 --freeze-embeddings --seed "$SEED" --threads "$THREADS" --save-every 100
        --resume --temperature 2 --declare-in "$OUT/qa_models")
if [[ -n ${LIMIT:-} ]]; then COMMON+=(--limit "$LIMIT"); fi
ALL=(--hidden-loss "$HIDDEN_W" --attention-loss "$ATTENTION_W" --value-relation-loss "$VALUE_W")

options() {  # the options that make a row
    case $1 in
        hard-labels) echo --alpha 1.0 --epochs "$EPOCHS" ;;
        logits) echo --alpha 0.5 --cache-teacher-logits --epochs "$EPOCHS" ;;
        hidden) echo --alpha 0.5 --hidden-loss "$HIDDEN_W" --epochs "$EPOCHS" ;;
        attention) echo --alpha 0.5 --attention-loss "$ATTENTION_W" --epochs "$EPOCHS" ;;
        value-relation) echo --alpha 0.5 --value-relation-loss "$VALUE_W" --epochs "$EPOCHS" ;;
        all) echo --alpha 0.5 "${ALL[@]}" --epochs "$EPOCHS" ;;
        all-uniform) echo --alpha 0.5 "${ALL[@]}" --layer-map 0:1,1:3,2:5 --epochs "$EPOCHS" ;;
        longer) echo --alpha 0.5 --cache-teacher-logits --epochs $((2 * EPOCHS)) ;;
        augment) echo --alpha 0.5 --cache-teacher-logits --augment "$AUGMENT" --epochs "$EPOCHS" ;;
        *) echo "unknown row: $1" >&2; return 1 ;;
    esac
}

mkdir -p "$OUT"
for row in $ROWS; do
    log="$OUT/$row.log"
    if [[ -f $log ]] && grep -q '^held-out' "$log"; then
        echo "== $row: done ($log)"
        continue
    fi
    read -ra extra <<< "$(options "$row")"
    echo "== $row: ${extra[*]}"
    "${QAGATE[@]}" distill "${COMMON[@]}" "${extra[@]}" --out "$OUT/minilm3-$row" --name "minilm3-$row" \
        2>&1 | tee "$log.part"
    mv "$log.part" "$log"
done

{
    echo "| row | options | EM | F1 | seed |"
    echo "| --- | --- | --- | --- | --- |"
    for row in $ROWS; do
        line=$(grep '^held-out' "$OUT/$row.log" || true)
        em=$(sed -n 's/.*EM \([0-9.]*\).*/\1/p' <<< "$line")
        f1=$(sed -n 's/.*F1 \([0-9.]*\).*/\1/p' <<< "$line")
        echo "| $row | \`$(options "$row")\` | ${em:-?} | ${f1:-?} | $SEED |"
    done
} | tee "$OUT/ablation.md"
